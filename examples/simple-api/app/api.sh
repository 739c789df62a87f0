#!/bin/sh
# Stands in for the tutorial's api.py: prints what a /health endpoint would answer.
echo '{"status": "ok"}'
