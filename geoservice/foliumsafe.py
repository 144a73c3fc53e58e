"""Folium/branca elements that never re-read data as a template, and a tooltip that shows data as text.

branca renders each element's ``header``/``html``/``script`` macro and then wraps the output in a new
``Element(output)`` — whose constructor parses that output as a Jinja template again. Any ``{{ … }}`` or
``{% … %}`` in data (a site name, a district name, an OSM comment) would then be evaluated on the server, and an
unbalanced one breaks the map for everyone. :class:`VerbatimMacro` renders the macros once and adds their
output as :class:`Verbatim` text. Every element of the coverage map that carries data uses it.
"""
from __future__ import annotations

from typing import Any

import folium
from branca.element import Element, Figure, MacroElement
from folium.map import FitBounds, LayerControl
from folium.template import Template


class Verbatim(Element):
    """Text rendered exactly as given (never parsed as a template)."""

    _template = Template("{{ this.text }}")

    def __init__(self, text: str):
        super().__init__()
        self._name = "Verbatim"
        self.text = text


class VerbatimMacro(MacroElement):
    """A MacroElement whose rendered macros go into the figure as :class:`Verbatim` text.

    Mix in before folium's class (``class X(folium.GeoJson, VerbatimMacro)``): folium's own ``render`` runs
    first and ends in this one instead of :meth:`branca.element.MacroElement.render`.
    """

    def render(self, **kwargs: Any) -> None:  # type: ignore[override]  # as MacroElement.render: output goes to the figure
        """Render header, html and script macros into the figure, then the children."""
        figure = self.get_root()
        assert isinstance(figure, Figure), "render the element inside a Figure"
        macros = self._template.module.__dict__
        for part in ("header", "html", "script"):
            macro = macros.get(part)
            if macro is not None:
                getattr(figure, part).add_child(Verbatim(str(macro(self, kwargs))), name=self.get_name())
        for child in self._children.values():
            child.render(**kwargs)


class SafeGeoJson(folium.GeoJson, VerbatimMacro):
    """folium's GeoJson (data embedded with Jinja's ``tojson``: ``<``, ``>``, ``&``, ``'`` and non-ASCII
    escaped as ``\\u`` sequences, so safe inside the script), rendered verbatim."""


class SafeTileLayer(folium.TileLayer, VerbatimMacro):
    """folium's TileLayer, rendered verbatim (a custom URL template is the planner's text)."""


class SafeLayerControl(LayerControl, VerbatimMacro):
    """folium's LayerControl, rendered verbatim. Leaflet puts layer names into innerHTML: pass them as HTML."""


class SafeFitBounds(FitBounds, VerbatimMacro):
    """folium's FitBounds, rendered verbatim."""


class TextTooltip(VerbatimMacro):
    """A sticky tooltip for a GeoJson layer: a table of ``aliases`` and the features' ``fields``, built with
    ``textContent`` (folium's GeoJsonTooltip puts property values into innerHTML as markup)."""

    _template = Template("""
        {% macro script(this, kwargs) %}
            {{ this._parent.get_name() }}.bindTooltip(function (layer) {
                var props = (layer.feature && layer.feature.properties) || {};
                var fields = {{ this.fields|tojson }}, aliases = {{ this.aliases|tojson }};
                var table = document.createElement('table');
                for (var i = 0; i < fields.length; i++) {
                    var row = table.insertRow(-1), th = document.createElement('th'), v = props[fields[i]];
                    th.textContent = aliases[i];
                    row.appendChild(th);
                    row.insertCell(-1).textContent = v === null || v === undefined ? '' : String(v);
                }
                return table;
            }, {sticky: true, className: {{ this.class_name|tojson }}});
        {% endmacro %}""")

    def __init__(self, fields: list[str], aliases: list[str], class_name: str = "gs-tooltip"):
        super().__init__()
        self._name = "TextTooltip"
        self.fields = fields
        self.aliases = aliases
        self.class_name = class_name
