"""Folium/branca elements that never re-read data as a template, show data as text, and carry a CSP nonce.

branca renders each element's ``header``/``html``/``script`` macro and then wraps the output in a new
``Element(output)`` — whose constructor parses that output as a Jinja template again. Any ``{{ … }}`` or
``{% … %}`` in data (a site name, a district name, an OSM comment) would then be evaluated on the server, and an
unbalanced one breaks the map for everyone. :class:`VerbatimMacro` renders the macros once and adds their
output as :class:`Verbatim` text. Every element of the coverage map that carries data uses it.

Under the map's Content-Security-Policy (:func:`geoservice.csp.map_policy`) only ``<script>`` and ``<style>``
elements carrying the page's nonce run. The nonce is written by the templates themselves — the figure's
(:class:`NoncedFigure`, which also writes the policy as a ``<meta>``), the map's header (:class:`NoncedMap`:
folium's ``L_NO_TOUCH`` switches and CSS) and the assets' (:class:`Asset`) — never by rewriting rendered HTML,
which would bless an injected tag as well. folium 0.20's templates are copied here with only that change.
"""
from __future__ import annotations

from typing import Any

import folium
from branca.element import Element, Figure, MacroElement
from folium.map import FitBounds, LayerControl
from folium.template import Template

from geoservice.csp import Policy, map_policy, new_nonce

NONCE = "{{ this.get_root().nonce }}"


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
        super().__init__()  # type: ignore[no-untyped-call]
        self._name = "TextTooltip"
        self.fields = fields
        self.aliases = aliases
        self.class_name = class_name


class NoncedFigure(Figure):
    """folium's Figure with a CSP ``<meta>``, UTF-8 declared first, and the page script carrying the nonce.

    ``nonce``, ``image_sources`` (http tile or asset hosts, see :func:`geoservice.csp.image_source`) and
    ``connect_self`` are set before rendering (:func:`geoservice.analysis.maps.render_html`).
    """

    _template = Template(
        "<!DOCTYPE html>\n<html>\n<head>\n"
        '<meta charset="utf-8">\n'
        '<meta http-equiv="Content-Security-Policy" content="{{ this.policy().meta()|e }}">\n'
        "{% if this.title %}<title>{{ this.title|e }}</title>{% endif %}"
        "    {{ this.header.render(**kwargs) }}\n</head>\n<body>\n"
        "    {{ this.html.render(**kwargs) }}\n</body>\n"
        '<script nonce="{{ this.nonce }}">\n    {{ this.script.render(**kwargs) }}\n</script>\n</html>\n')

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.header._children.pop("meta_http", None)  # charset comes first in the template instead
        self.nonce = ""
        self.image_sources: tuple[str, ...] = ()
        self.connect_self = False  # the page fetches the sites' details from this service's API

    def policy(self) -> Policy:
        """The page's Content-Security-Policy for the current nonce."""
        return map_policy(self.nonce, self.image_sources, self.connect_self)

    def render(self, **kwargs: Any) -> str:
        """The page. Rendered without a nonce set (e.g. displayed in Jupyter), it gets a fresh one."""
        if not self.nonce:
            self.nonce = new_nonce()
        return str(super().render(**kwargs))


class NoncedMap(folium.Map, VerbatimMacro):
    """folium.Map in a :class:`NoncedFigure`, its header CSS and global switches carrying the nonce.

    No default JS/CSS links (the caller adds :class:`Asset` elements: no CDN, and every tag nonced).
    """

    _template = Template("""
        {% macro header(this, kwargs) %}
            <meta name="viewport" content="width=device-width,
                initial-scale=1.0, maximum-scale=1.0, user-scalable=no" />
            <style nonce="@NONCE@">
                #{{ this.get_name() }} {
                    position: {{this.position}};
                    width: {{this.width[0]}}{{this.width[1]}};
                    height: {{this.height[0]}}{{this.height[1]}};
                    left: {{this.left[0]}}{{this.left[1]}};
                    top: {{this.top[0]}}{{this.top[1]}};
                }
                .leaflet-container { font-size: {{this.font_size}}; }
            </style>

            <style nonce="@NONCE@">html, body {
                width: 100%;
                height: 100%;
                margin: 0;
                padding: 0;
            }
            </style>

            <style nonce="@NONCE@">#map {
                position:absolute;
                top:0;
                bottom:0;
                right:0;
                left:0;
                }
            </style>

            <script nonce="@NONCE@">
                L_NO_TOUCH = {{ this.global_switches.no_touch |tojson}};
                L_DISABLE_3D = {{ this.global_switches.disable_3d|tojson }};
            </script>

        {% endmacro %}

        {% macro html(this, kwargs) %}
            <div class="folium-map" id={{ this.get_name()|tojson }} ></div>
        {% endmacro %}

        {% macro script(this, kwargs) %}
            var {{ this.get_name() }} = L.map(
                {{ this.get_name()|tojson }},
                {
                    center: {{ this.location|tojson }},
                    crs: L.CRS.{{ this.crs }},
                    ...{{this.options|tojavascript}}

                }
            );

            {%- if this.control_scale %}
            L.control.scale().addTo({{ this.get_name() }});
            {%- endif %}

            {%- if this.zoom_control_position %}
            L.control.zoom( { position: {{ this.zoom_control|tojson }} } ).addTo({{ this.get_name() }});
            {%- endif %}

            {% if this.objects_to_stay_in_front %}
            function objects_in_front() {
                {%- for obj in this.objects_to_stay_in_front %}
                    {{ obj.get_name() }}.bringToFront();
                {%- endfor %}
            };
            {{ this.get_name() }}.on("overlayadd", objects_in_front);
            $(document).ready(objects_in_front);
            {%- endif %}

        {% endmacro %}
        """.replace("@NONCE@", NONCE))

    default_js: list[tuple[str, str]] = []
    default_css: list[tuple[str, str]] = []

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        NoncedFigure().add_child(self)  # in place of the plain Figure folium.Map made


class Asset(Element):
    """A script or stylesheet with the page's nonce: linked (``url``) or inlined (``text``, a trusted file
    already passed through :func:`geoservice.htmlsafe.raw_text`)."""

    _template = Template("""
        {%- if this.css and this.url -%}
            <link rel="stylesheet" href="{{ this.url|e }}" nonce="@NONCE@">
        {%- elif this.css -%}
            <style nonce="@NONCE@">{{ this.text }}</style>
        {%- elif this.url -%}
            <script src="{{ this.url|e }}" nonce="@NONCE@"></script>
        {%- else -%}
            <script nonce="@NONCE@">{{ this.text }}</script>
        {%- endif -%}""".replace("@NONCE@", NONCE))

    def __init__(self, css: bool, url: str | None = None, text: str | None = None):
        super().__init__()
        self._name = "Asset"
        self.css = css
        self.url = url
        self.text = text
