//! Images in the store: import, archives (docker save / OCI layout), tags, history and inspect views.
