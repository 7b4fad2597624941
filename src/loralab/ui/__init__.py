"""``loralab ui``: the whole workflow (data, comparison, trying, shipping, browsing runs) in a
local web page, built on the library's own functions. Needs the ``ui`` extra."""
