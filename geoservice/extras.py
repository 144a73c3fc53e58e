"""The optional extras of the install, and the one error that says which to install when one is missing.

A couriers'-API deployment installs ``geoservice`` alone; the planners' features (coverage API, coverage map,
``geoservice coverage|map``) need ``geoservice[planners]``, GeoPackage files need ``geoservice[gpkg]``.
Modules on the core path never import those packages at import time; the features that need them call
:func:`require` first, so a missing extra is a 501 problem over HTTP (the handler for
:class:`~geoservice.errors.GeoserviceError`) and one clear line on the command line, never a traceback.
"""
from __future__ import annotations

import dataclasses
import functools
import importlib.util

from geoservice.errors import GeoserviceError


@dataclasses.dataclass(frozen=True)
class Extra:
    """An optional extra: its name in ``pip install 'geoservice[NAME]'``, what it enables, what it imports."""

    name: str
    feature_zh: str
    feature_en: str
    modules: tuple[str, ...]


PLANNERS = Extra("planners", "规划分析功能（覆盖率、覆盖地图）", "the planners' features (coverage analysis and map)",
                 ("geopandas", "pandas", "h3", "folium", "matplotlib"))
GPKG = Extra("gpkg", "GeoPackage 文件的读写", "reading and writing GeoPackage files",
             ("geopandas", "pandas", "pyogrio"))


class ExtraMissing(GeoserviceError):
    """A feature whose optional extra is not installed (501): the detail names the extra, in Chinese and English."""

    status = 501
    title = "Not installed"

    def __init__(self, extra: Extra, module: str):
        self.extra = extra
        self.module = module
        command = f"pip install 'geoservice[{extra.name}]'"
        super().__init__(
            f"此服务未安装{extra.feature_zh}所需的可选依赖（缺少 {module}），请安装：{command}。 / "
            f"This installation lacks the optional dependencies of {extra.feature_en} ({module} is missing); "
            f"install them with: {command}.")


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a blocked or half-removed module counts as missing
        return False


@functools.cache
def missing_module(extra: Extra) -> str | None:
    """The first of ``extra``'s modules that cannot be imported, or None when the extra is installed.

    Cached for the process: installing an extra needs a restart anyway.
    """
    return next((m for m in extra.modules if not _importable(m)), None)


def require(extra: Extra) -> None:
    """Raise :class:`ExtraMissing` unless every module of ``extra`` can be imported (without importing them)."""
    module = missing_module(extra)
    if module is not None:
        raise ExtraMissing(extra, module)
