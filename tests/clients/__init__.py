"""The bare-metal functional test suites that Ironic's clients ship, run against enclume-aio."""
