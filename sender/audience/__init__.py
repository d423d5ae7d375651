"""Supporters: reading a CRM export, importing it, erasing a supporter, and assigning cases."""
