"""Offline tooling around the program: the recording mock monitor and fakes, `make plan`, `make bench`,
the graph views and the README reference generator. Nothing here is imported by `pulumi up`."""
