"""The EC2 Query API (Nova's nova-api EC2 front end) on its own port."""
