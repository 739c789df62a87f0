//! Dockerfile frontend: text -> AST (with line numbers) -> typed stages; word expansion; `.dockerignore`. No I/O.
