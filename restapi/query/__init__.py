"""Elasticsearch's query DSL over the security indices Keyward serves, translated into Django ``Q``."""
