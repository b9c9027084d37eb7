"""Spend: budgets per tenant and cost tag, the usage ledger, and the counters both rest on."""
