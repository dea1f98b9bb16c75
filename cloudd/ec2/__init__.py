"""The EC2 API's own tables, one repository each (issue 17, item 2): `ids` (`ec2_id_mappings`,
the stable numbers behind i-/ami-/sg- ids), `tags` (`ec2_tags`), `client_tokens`
(`ec2_client_tokens`, RunInstances' idempotency). No HTTP here: the EC2 handlers
(`cloudd.api.ec2`) turn these into ids, errors and XML.
"""
