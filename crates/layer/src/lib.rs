//! The differ: layer tars to directories (confined, whiteouts applied) and directory diffs to layer tars.
