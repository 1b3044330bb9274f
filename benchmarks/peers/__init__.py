"""`make bench-peers`: this project's server against the server a Python user would pick instead."""
