"""Integration tests of the publisher and the gateway. A package (named `publishing`, not
`producers`, which would shadow the real package on sys.path) so that mypy and pytest tell its
conftest apart from the other integration test directories'."""
