"""The CMDB model: CI classes, relationship types, the report wire format and the store contract."""
