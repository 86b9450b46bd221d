"""The report layer: labels, number formatting, sentence templates, plots, HTML
rendering and the report runner. Nothing below this layer imports it."""
