"""Nova's vocabularies, spoken by both processes and carried by the RPC contracts: vm, task and
power states; the hypervisor name of an instance; the security-group rule model and the network
domain's error base it raises. Pure modules that import nothing of cloudd but `cloudd.errors`,
so the contracts (cloudd.rpc.contracts), the config validator, the controller's domains and the
agent can all import them without an import circle.
"""
