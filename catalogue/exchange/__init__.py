"""Catalogue exchange: share service definitions between portals as a versioned JSON document.

``fields`` lists what is exported per model, ``placeholders`` turns local names (groups,
departments, directory DNs) into named placeholders and back, ``validation`` checks a
document (schema and meaning), ``services`` exports and imports. See docs/catalogue-exchange.md.
"""

FORMAT_VERSION = "1.0"
