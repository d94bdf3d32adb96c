"""Bridges to other training frameworks: sgpo.integrations.trl streams any TRL GRPOTrainer run into a store."""
