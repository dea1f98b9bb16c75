"""The Network API v2.0 (the Neutron subset the openstack CLI and openstacksdk use), mounted at
/network, as a facade over cloudd's nova-network model (cloudd/network)."""
