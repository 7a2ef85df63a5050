"""The release stage: cut (gates, assemble, sign, record), verify with the signature, compare two releases."""
