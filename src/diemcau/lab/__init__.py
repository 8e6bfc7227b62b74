"""A multi-host lab of network namespaces on one machine (tests, benchmarks, demos).

`netns` makes namespaces that vanish with their creator; `network` builds the
lab's hosts, backbone bridge, routers and commune LANs from an address plan.
Tooling, like `diemcau.sim`: nothing in the product imports it.
"""
