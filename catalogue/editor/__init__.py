"""The catalogue editor in the portal: IT admins build items, order forms, rules and
approval policies without the Django admin. Provisioning actions have their own page in
``provisioning.editor`` (the catalogue does not know the directory)."""
