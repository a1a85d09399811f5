"""Python steps of the recipes (recipes/*.sh): each module is a small CLI with one job."""
