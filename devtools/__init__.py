"""Development-only tools: private directory servers and demo data.

Never part of a production installation: ``INSTALLED_APPS`` lists this package only with
``DEBUG`` or ``DEV_TOOLS`` (the tests and ``make demo`` set it), and no product module
imports it. It holds the private OpenLDAP slapd (``devdirectory``) and Samba AD DC
(``devsamba``) the tests and the demo run, the demo organisation and catalogue
(``seed_demo``, ``seed_demo_provisioning``, ``directory_server``) and the generator of a
past year of orders (``seed_history``).
"""
