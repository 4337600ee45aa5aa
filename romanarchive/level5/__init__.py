"""Level 5 community products: the submission contract, validation, the submission service and publication."""
