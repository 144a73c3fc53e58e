"""Generate the SIMULATED demo network of rest facilities (``geoservice/data/layers/sites_*_simulated.geojson``).

There is no open list of the real stations, so the demo data is made up, reproducibly, from a seed.
It is sized from Beijing trade-union reporting (shared/domain.md):

* 9,650 warm stations (暖心驿站) by the end of 2018, of which 644 in Dongcheng;
* 2,020 mother-and-baby rooms (母婴关爱室, 2019);
* 159 workers' homes (职工之家: 14 public-area homes built in 2018 + 145 model homes).

Everything except Dongcheng's warm stations is apportioned over the 16 districts by a documented proxy,
``population_2020 × (population_2020 / area_km2) ** alpha`` (largest-remainder rounding): more sites where
more people live, and more per resident where they live densely. Inside a district, points are a mixture of
Gaussian clusters around approximate built-up centres (district seats, new towns, business districts; see
``DISTRICT_CENTRES``) and a small uniform background share, so the mountains of Mentougou, Huairou, Miyun and
Yanqing stay sparse. Every point is rejection-sampled to lie in its own district polygon and in no other.

Names, addresses, operators and phone numbers are generic or fictional; they do not describe real places or
businesses. Run ``python -m tools.layers.demo_sites [DISTRICTS_PATH [OUT_DIR]]`` to regenerate.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import opening_hours
import shapely
from shapely.geometry import shape

from geoservice.model import AMENITIES, KIND_LABELS
from tools.layers import (
    DISTRICTS_FILENAME,
    LAYERS_DIR,
    feature_collection_text,
    point_feature,
    write_text,
)

LOGGER = logging.getLogger(__name__)

DEFAULT_SEED = 20181231
REFERENCE_DATE = "2018-12-31"  # the network sizes are as reported for the end of 2018 (rooms: 2019)
LICENCE = "CC0-1.0"

DONGCHENG = "110101"

# Target counts (shared/domain.md).
TOTAL_COUNTS: dict[str, int] = {"warm_station": 9650, "mother_baby_room": 2020, "worker_home": 159}
FIXED_DISTRICT_COUNTS: dict[str, dict[str, int]] = {"warm_station": {DONGCHENG: 644}}

# Allocation proxy exponent per kind: weight = pop * density ** alpha. Workers' homes sit in business
# districts, so they are concentrated more strongly in the dense core.
ALLOCATION_ALPHA: dict[str, float] = {"warm_station": 0.3, "mother_baby_room": 0.3, "worker_home": 0.6}

ID_PREFIX: dict[str, str] = {"warm_station": "sim-ws", "mother_baby_room": "sim-mb", "worker_home": "sim-wh"}
OUTPUT_FILES: dict[str, str] = {kind: f"sites_{kind}_simulated.geojson" for kind in TOTAL_COUNTS}

URBAN_CORE = ("110101", "110102")


@dataclasses.dataclass(frozen=True)
class Centre:
    """An approximate built-up centre (WGS-84, to ~0.01°) around which sites cluster."""

    name: str
    lon: float
    lat: float
    weight: float
    sigma_km: float


# Approximate centres of each district's built-up areas (district seats, new towns, business districts),
# picked by hand from general geographic knowledge; they only shape the simulated density.
# Dongcheng and Xicheng are built up throughout and are sampled uniformly.
DISTRICT_CENTRES: dict[str, tuple[Centre, ...]] = {
    "110101": (),
    "110102": (),
    "110105": (
        Centre("CBD / Guomao", 116.461, 39.909, 3.0, 2.5),
        Centre("Wangjing", 116.470, 39.995, 2.0, 2.0),
        Centre("Sanlitun", 116.455, 39.935, 1.5, 1.5),
        Centre("Jiuxianqiao", 116.492, 39.968, 1.0, 2.0),
        Centre("Yayuncun", 116.405, 40.000, 1.5, 2.0),
        Centre("Changying", 116.590, 39.925, 1.0, 2.5),
        Centre("Shibalidian", 116.500, 39.850, 1.0, 2.5),
        Centre("Capital Airport", 116.595, 40.075, 0.4, 1.5),
    ),
    "110106": (
        Centre("Fengtai Science Park", 116.287, 39.835, 1.5, 2.0),
        Centre("Fangzhuang", 116.435, 39.866, 1.5, 2.0),
        Centre("Lize", 116.315, 39.865, 1.5, 2.0),
        Centre("Muxiyuan", 116.390, 39.845, 1.5, 2.0),
        Centre("Lugouqiao", 116.230, 39.855, 0.7, 2.0),
        Centre("Changxindian", 116.205, 39.830, 0.7, 2.0),
    ),
    "110107": (
        Centre("Lugu", 116.200, 39.910, 1.5, 1.5),
        Centre("Bajiao", 116.220, 39.905, 1.5, 1.5),
        Centre("Pingguoyuan", 116.180, 39.930, 1.0, 1.5),
        Centre("Shougang Park", 116.165, 39.915, 0.5, 1.0),
    ),
    "110108": (
        Centre("Zhongguancun", 116.316, 39.983, 3.0, 2.0),
        Centre("Wudaokou", 116.338, 39.992, 1.5, 1.5),
        Centre("Gongzhufen", 116.310, 39.915, 2.0, 2.0),
        Centre("Wanliu", 116.290, 39.965, 1.0, 2.0),
        Centre("Shangdi", 116.305, 40.040, 1.5, 2.0),
        Centre("Xisanqi", 116.355, 40.060, 1.0, 1.5),
        Centre("Wenquan", 116.180, 40.045, 0.5, 3.0),
    ),
    "110109": (
        Centre("Dayu / Chengzi (district seat)", 116.100, 39.935, 3.0, 1.5),
        Centre("Yongding", 116.085, 39.910, 1.5, 1.5),
        Centre("Longquan", 116.110, 39.960, 1.0, 1.5),
        Centre("Wangping", 116.050, 39.955, 0.3, 1.5),
        Centre("Zhaitang", 115.700, 39.975, 0.2, 2.0),
    ),
    "110111": (
        Centre("Liangxiang (district seat)", 116.140, 39.730, 3.0, 3.0),
        Centre("Changyang", 116.210, 39.765, 2.0, 2.5),
        Centre("Yanshan", 115.975, 39.720, 1.0, 2.0),
        Centre("Chengguan", 116.000, 39.700, 0.8, 2.0),
        Centre("Doudian", 116.060, 39.650, 0.6, 2.5),
        Centre("Liulihe", 116.030, 39.600, 0.4, 2.5),
    ),
    "110112": (
        Centre("Beijing sub-centre", 116.660, 39.905, 3.0, 3.0),
        Centre("Liyuan", 116.640, 39.880, 2.0, 2.0),
        Centre("Songzhuang", 116.715, 39.960, 0.6, 2.5),
        Centre("Taihu", 116.600, 39.835, 0.8, 2.5),
        Centre("Majuqiao", 116.560, 39.755, 0.6, 2.5),
        Centre("Yongle", 116.790, 39.700, 0.4, 3.0),
    ),
    "110113": (
        Centre("Shunyi new town", 116.655, 40.130, 3.0, 3.0),
        Centre("Houshayu", 116.555, 40.110, 1.0, 2.0),
        Centre("Tianzhu", 116.580, 40.060, 1.0, 2.0),
        Centre("Liqiao", 116.590, 40.030, 0.8, 2.0),
        Centre("Niulanshan", 116.690, 40.220, 0.5, 2.5),
        Centre("Yangzhen", 116.810, 40.170, 0.4, 2.5),
    ),
    "110114": (
        Centre("Huilongguan", 116.330, 40.075, 2.5, 2.5),
        Centre("Tiantongyuan", 116.420, 40.070, 2.5, 2.0),
        Centre("Changping new town", 116.235, 40.220, 1.5, 3.0),
        Centre("Shahe", 116.285, 40.130, 1.0, 2.5),
        Centre("Beiqijia", 116.440, 40.115, 0.8, 2.5),
        Centre("Xiaotangshan", 116.400, 40.180, 0.5, 2.5),
        Centre("Nankou", 116.130, 40.235, 0.3, 2.0),
    ),
    "110115": (
        Centre("Huangcun (district seat)", 116.340, 39.730, 3.0, 3.0),
        Centre("Yizhuang", 116.510, 39.790, 2.0, 2.5),
        Centre("Xihongmen", 116.330, 39.790, 1.5, 2.0),
        Centre("Jiugong", 116.460, 39.810, 1.0, 2.0),
        Centre("Panggezhuang", 116.320, 39.600, 0.4, 2.5),
        Centre("Yufa", 116.320, 39.520, 0.3, 2.5),
        Centre("Daxing Airport", 116.400, 39.530, 0.3, 1.5),
    ),
    "110116": (
        Centre("Huairou town (district seat)", 116.635, 40.320, 3.0, 2.5),
        Centre("Yangsong", 116.590, 40.295, 1.0, 2.0),
        Centre("Miaocheng", 116.630, 40.270, 0.8, 2.0),
        Centre("Yanqi Lake", 116.670, 40.380, 0.6, 2.0),
        Centre("Bohai", 116.490, 40.440, 0.2, 2.0),
        Centre("Tanghekou", 116.630, 40.730, 0.1, 2.0),
    ),
    "110117": (
        Centre("Pinggu town (district seat)", 117.120, 40.140, 3.0, 2.5),
        Centre("Mafang", 117.010, 40.080, 0.8, 2.0),
        Centre("Xiagezhuang", 117.150, 40.090, 0.5, 2.0),
        Centre("Jinhai Lake", 117.300, 40.190, 0.3, 2.0),
    ),
    "110118": (
        Centre("Miyun town (district seat)", 116.845, 40.375, 3.0, 2.5),
        Centre("Xitiange", 116.900, 40.360, 1.0, 2.0),
        Centre("Shilipu", 116.800, 40.390, 0.8, 2.0),
        Centre("Xiwengzhuang", 116.940, 40.290, 0.5, 2.0),
        Centre("Taishitun", 117.130, 40.540, 0.2, 2.0),
        Centre("Gubeikou", 117.150, 40.690, 0.1, 1.5),
    ),
    "110119": (
        Centre("Yanqing town (district seat)", 115.975, 40.460, 3.0, 2.5),
        Centre("Kangzhuang", 115.905, 40.365, 0.8, 2.0),
        Centre("Badaling", 116.015, 40.360, 0.4, 1.5),
        Centre("Yongning", 116.120, 40.530, 0.4, 2.0),
    ),
}

# Share of each district's sites drawn uniformly over the whole district (villages, roadside stations).
BACKGROUND_SHARE: dict[str, float] = {
    "110101": 1.0, "110102": 1.0,
    "110105": 0.12, "110106": 0.12, "110107": 0.15, "110108": 0.10,
    "110109": 0.04, "110111": 0.06, "110112": 0.08, "110113": 0.08, "110114": 0.06, "110115": 0.08,
    "110116": 0.03, "110117": 0.05, "110118": 0.03, "110119": 0.04,
}

# ------------------------------------------------------------------------------------------------------
# Host vocabularies. Every name here is generic or fictional (no real brands).
# ------------------------------------------------------------------------------------------------------
# Generic place-name stems for streets, subdistricts and hosts: (Chinese, pinyin).
PLACE_STEMS: tuple[tuple[str, str], ...] = (
    ("和平", "Heping"), ("幸福", "Xingfu"), ("建设", "Jianshe"), ("光明", "Guangming"), ("民主", "Minzhu"),
    ("团结", "Tuanjie"), ("友谊", "Youyi"), ("青年", "Qingnian"), ("文化", "Wenhua"), ("新华", "Xinhua"),
    ("东风", "Dongfeng"), ("光华", "Guanghua"), ("惠民", "Huimin"), ("康乐", "Kangle"), ("永安", "Yong'an"),
    ("长青", "Changqing"), ("兴华", "Xinghua"), ("富强", "Fuqiang"), ("育新", "Yuxin"), ("安华", "Anhua"),
    ("丰和", "Fenghe"), ("锦绣", "Jinxiu"), ("春晖", "Chunhui"), ("朝晖", "Zhaohui"), ("和顺", "Heshun"),
    ("瑞祥", "Ruixiang"), ("福源", "Fuyuan"), ("嘉园", "Jiayuan"), ("振兴", "Zhenxing"), ("胜利", "Shengli"),
    ("向阳", "Xiangyang"), ("红星", "Hongxing"), ("金河", "Jinhe"), ("银杏", "Yinxing"), ("松林", "Songlin"),
    ("柳荫", "Liuyin"), ("槐花", "Huaihua"), ("枣园", "Zaoyuan"), ("杏林", "Xinglin"), ("榆树", "Yushu"),
    ("石桥", "Shiqiao"), ("三里", "Sanli"), ("五里", "Wuli"), ("八里", "Bali"), ("十里", "Shili"),
    ("北湖", "Beihu"), ("西湖", "Xihu"), ("东湖", "Donghu"), ("河畔", "Hepan"), ("秀水", "Xiushui"),
    ("白塔", "Baita"), ("花园", "Huayuan"), ("景泰", "Jingtai"), ("太平", "Taiping"), ("吉祥", "Jixiang"),
    ("如意", "Ruyi"), ("平安", "Ping'an"), ("祥和", "Xianghe"), ("安定", "Anding"), ("兴隆", "Xinglong"),
    ("宏达", "Hongda"), ("腾飞", "Tengfei"), ("双桥", "Shuangqiao"), ("新苑", "Xinyuan"), ("怡景", "Yijing"),
    ("晨光", "Chenguang"), ("明珠", "Mingzhu"), ("华星", "Huaxing"), ("翠林", "Cuilin"), ("金盏", "Jinzhan"),
)
STREET_SUFFIXES: tuple[tuple[str, str], ...] = (
    ("路", "Road"), ("街", "Street"), ("大街", "Avenue"), ("北路", "North Road"), ("南路", "South Road"),
    ("东路", "East Road"), ("西路", "West Road"), ("中路", "Middle Road"), ("北街", "North Street"),
    ("南街", "South Street"),
)
HUTONG_SUFFIXES: tuple[tuple[str, str], ...] = (("胡同", "Hutong"), ("条", "Tiao"), ("巷", "Lane"))

CONVENIENCE_CHAINS: tuple[tuple[str, str], ...] = (
    ("邻里便利店", "Linli Convenience Store"), ("街坊便利", "Jiefang Convenience"),
    ("惠邻超市", "Huilin Mini-mart"), ("社区便利店", "Community Convenience Store"),
)
BANKS: tuple[tuple[str, str], ...] = (
    ("京华银行", "Jinghua Bank"), ("燕都银行", "Yandu Bank"), ("城乡商业银行", "Chengxiang Commercial Bank"),
)
ESTATE_AGENCIES: tuple[tuple[str, str], ...] = (
    ("安居房产", "Anju Realty"), ("家园地产", "Jiayuan Property"), ("宜居置业", "Yiju Homes"),
)
INDUSTRIES: tuple[tuple[str, str], ...] = (
    ("科技", "Technology"), ("物流", "Logistics"), ("物业管理", "Property Management"),
    ("信息技术", "Information Technology"), ("建设工程", "Construction"), ("文化传媒", "Media"),
)

# Host types per kind: (host_type, weight). Weights follow what the unions report hosting each kind.
HOST_WEIGHTS: dict[str, tuple[tuple[str, float], ...]] = {
    "warm_station": (
        ("convenience_store", 0.28), ("estate_agency", 0.16), ("bank", 0.15), ("community_centre", 0.17),
        ("union_station", 0.14), ("fuel_station", 0.10),
    ),
    "mother_baby_room": (
        ("workplace", 0.36), ("mall", 0.14), ("hospital", 0.12), ("bank", 0.10), ("union_station", 0.10),
        ("park", 0.08), ("bus_station", 0.05), ("stadium", 0.05),
    ),
    "worker_home": (("office_park", 0.6), ("mall", 0.4)),
}

# Opening hours per host type (OSM opening_hours syntax): (hours, weight).
HOURS: dict[str, tuple[tuple[str, float], ...]] = {
    "convenience_store": (("24/7", 0.55), ("07:00-23:00", 0.35), ("06:30-22:30", 0.10)),
    "fuel_station": (("24/7", 0.85), ("06:00-22:00", 0.15)),
    "bank": (
        ("Mo-Fr 09:00-17:00; PH off", 0.55), ("Mo-Su 09:00-17:00", 0.30),
        ("Mo-Fr 09:00-17:00; Sa 09:30-16:00; PH off", 0.15),
    ),
    "estate_agency": (("08:30-21:00", 0.45), ("Mo-Su 09:00-20:00", 0.35), ("Mo,We-Su 09:00-20:00", 0.20)),
    "union_station": (
        ("Mo-Fr 08:30-17:30; PH off", 0.50),
        ("Nov-Mar Mo-Fr 07:00-19:00; Apr-Oct Mo-Fr 08:00-18:00; PH off", 0.25),
        ("Mo-Sa 08:30-17:30; PH off", 0.15), ("Tu-Su 09:00-20:00", 0.10),
    ),
    "community_centre": (
        ("Mo-Fr 08:30-17:30; PH off", 0.35), ("Tu-Su 09:00-20:00", 0.25), ("Mo-Su 08:00-20:00", 0.20),
        ("Nov-Mar Mo-Fr 07:00-19:00; Apr-Oct Mo-Fr 08:00-18:00; PH off", 0.15), ("Mo-Sa 08:00-18:00", 0.05),
    ),
    "mall": (("10:00-22:00", 0.80), ("Mo-Th,Su 10:00-22:00; Fr,Sa 10:00-22:30", 0.20)),
    "hospital": (("24/7", 0.70), ("Mo-Fr 08:00-17:00; Sa,Su 08:00-12:00", 0.30)),
    "park": (("Apr-Oct 06:00-21:00; Nov-Mar 06:30-19:00", 0.80), ("06:00-22:00", 0.20)),
    "bus_station": (("05:30-21:00", 0.60), ("05:00-22:30", 0.40)),
    "stadium": (("Tu-Su 09:00-21:00", 0.60), ("Mo-Su 08:00-21:00", 0.40)),
    "workplace": (("Mo-Fr 08:30-17:30; PH off", 0.70), ("Mo-Fr 08:00-18:00; PH off", 0.30)),
    "office_park": (("24/7", 0.65), ("Mo-Su 07:00-22:00", 0.35)),
}
# Public-area workers' homes keep their own hours, whatever the host: mostly 24/7.
WORKER_HOME_HOURS: tuple[tuple[str, float], ...] = (("24/7", 0.70), ("Mo-Su 07:00-22:00", 0.30))

# Amenity probabilities per kind (codes from geoservice.model.AMENITIES); toilet also varies by host.
AMENITY_PROBS: dict[str, dict[str, float]] = {
    "warm_station": {
        "drinking_water": 0.97, "hot_water": 0.80, "heating": 0.80, "air_conditioning": 0.85,
        "microwave": 0.55, "toilet": 0.60, "charging": 0.85, "wifi": 0.70, "seating": 0.95,
        "first_aid": 0.60, "lockers": 0.12, "wheelchair_accessible": 0.30,
    },
    "mother_baby_room": {
        "nursing_chair": 0.98, "changing_table": 0.90, "sink": 0.75, "fridge": 0.45, "seating": 0.90,
        "hot_water": 0.80, "drinking_water": 0.60, "air_conditioning": 0.85, "heating": 0.60, "wifi": 0.40,
        "charging": 0.50, "toilet": 0.30, "microwave": 0.15, "first_aid": 0.30, "lockers": 0.05,
        "wheelchair_accessible": 0.50,
    },
    "worker_home": {
        "drinking_water": 0.98, "hot_water": 0.90, "heating": 0.90, "air_conditioning": 0.95,
        "microwave": 0.70, "toilet": 0.85, "charging": 0.95, "wifi": 0.95, "seating": 1.0,
        "first_aid": 0.80, "lockers": 0.60, "fridge": 0.30, "sink": 0.50, "wheelchair_accessible": 0.60,
    },
}
TOILET_BY_HOST: dict[str, float] = {
    "convenience_store": 0.45, "fuel_station": 0.95, "bank": 0.50, "estate_agency": 0.35,
    "union_station": 0.90, "community_centre": 0.90,
}
LOCKERS_BY_HOST: dict[str, float] = {"union_station": 0.45, "community_centre": 0.25}

NO_PHONE_SHARE = 0.08

KIND_NAME_SUFFIX: dict[str, tuple[str, str]] = {
    "warm_station": ("暖心驿站", "Warm Station"),
    "mother_baby_room": ("母婴关爱室", "Mother-and-Baby Room"),
    "worker_home": ("职工之家", "Workers' Home"),
}
# Workers' homes in shopping districts are the "public-area" kind (公共区域职工之家).
PUBLIC_AREA_SUFFIX: tuple[str, str] = ("公共区域职工之家", "Public-Area Workers' Home")

SIMULATED_SENTENCE = (
    "SIMULATED demo data: randomly generated sites for demonstrating and testing geoservice. "
    "These are NOT real station locations; names, addresses, operators, hours and phone numbers are "
    "generic or fictional. 模拟演示数据，并非真实站点。"
)

_KM_PER_DEG_LAT = 110.574


# ------------------------------------------------------------------------------------------------------
# Districts and allocation
# ------------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class District:
    """What the generator needs to know about one district."""

    adcode: str
    name_zh: str
    name_en: str
    area_km2: float
    population: int
    geometry: shapely.MultiPolygon


def load_districts(districts_path: Path) -> list[District]:
    """Read the districts layer written by :mod:`tools.layers.districts`, in adcode order."""
    doc = json.loads(Path(districts_path).read_text(encoding="utf-8"))
    out = []
    for feat in doc["features"]:
        p = feat["properties"]
        geom = shape(feat["geometry"])
        shapely.prepare(geom)
        out.append(District(str(p["adcode"]), p["name_zh"], p["name_en"], float(p["area_km2"]),
                            int(p["population_2020"]), geom))
    out.sort(key=lambda d: d.adcode)
    return out


def apportion(total: int, weights: Sequence[float]) -> list[int]:
    """Largest-remainder (Hamilton) apportionment of ``total`` in proportion to ``weights``."""
    w = np.asarray(weights, dtype=np.float64)
    if total < 0 or w.size == 0 or np.any(w < 0) or w.sum() <= 0:
        raise ValueError("apportion needs total >= 0 and non-negative weights with a positive sum")
    quotas = total * w / w.sum()
    base = np.floor(quotas).astype(int)
    remainder = total - int(base.sum())
    # Ties broken by index (stable sort) so the result is deterministic.
    order = np.argsort(-(quotas - base), kind="stable")
    base[order[:remainder]] += 1
    return [int(v) for v in base]


def district_counts(kind: str, districts: Sequence[District]) -> dict[str, int]:
    """Number of simulated sites of ``kind`` per district adcode."""
    fixed = FIXED_DISTRICT_COUNTS.get(kind, {})
    alpha = ALLOCATION_ALPHA[kind]
    free = [d for d in districts if d.adcode not in fixed]
    weights = [d.population * (d.population / d.area_km2) ** alpha for d in free]
    shares = apportion(TOTAL_COUNTS[kind] - sum(fixed.values()), weights)
    counts = dict(fixed)
    counts.update({d.adcode: n for d, n in zip(free, shares)})
    return {d.adcode: counts[d.adcode] for d in districts}


# ------------------------------------------------------------------------------------------------------
# Point sampling
# ------------------------------------------------------------------------------------------------------
def sample_points(
    rng: np.random.Generator, district: District, others: Sequence[District], n: int
) -> np.ndarray:
    """``n`` points (lon, lat rounded to 6 decimals) inside ``district`` and outside every other one."""
    if n == 0:
        return np.zeros((0, 2))
    centres = DISTRICT_CENTRES.get(district.adcode, ())
    bg_share = 1.0 if not centres else BACKGROUND_SHARE.get(district.adcode, 0.1)
    minx, miny, maxx, maxy = district.geometry.bounds
    if centres:
        c_xy = np.array([[c.lon, c.lat] for c in centres])
        c_w = np.array([c.weight for c in centres])
        c_w = c_w / c_w.sum()
        c_sigma = np.array([c.sigma_km for c in centres])
    accepted: list[np.ndarray] = []
    have = 0
    for _ in range(10_000):
        m = max(64, 3 * (n - have))
        xy = np.empty((m, 2))
        bg = rng.random(m) < bg_share
        nb = int(bg.sum())
        xy[bg, 0] = rng.uniform(minx, maxx, nb)
        xy[bg, 1] = rng.uniform(miny, maxy, nb)
        nc = m - nb
        if nc:
            idx = rng.choice(len(centres), size=nc, p=c_w)
            sig_lat = c_sigma[idx] / _KM_PER_DEG_LAT
            sig_lon = sig_lat / np.cos(np.radians(c_xy[idx, 1]))
            z = rng.standard_normal((nc, 2))
            xy[~bg, 0] = c_xy[idx, 0] + z[:, 0] * sig_lon
            xy[~bg, 1] = c_xy[idx, 1] + z[:, 1] * sig_lat
        xy = np.round(xy, 6)
        ok = shapely.contains_xy(district.geometry, xy[:, 0], xy[:, 1])
        for other in others:
            ok &= ~shapely.contains_xy(other.geometry, xy[:, 0], xy[:, 1])
        good = xy[ok][: n - have]
        accepted.append(good)
        have += len(good)
        if have >= n:
            break
    else:  # pragma: no cover - only with centres far outside the district
        raise RuntimeError(f"could not place {n} points in {district.name_en}")
    return np.concatenate(accepted)


# ------------------------------------------------------------------------------------------------------
# Attributes
# ------------------------------------------------------------------------------------------------------
@functools.cache
def _checked_hours(hours: str) -> str:
    if not opening_hours.validate(hours):
        raise ValueError(f"invalid opening_hours {hours!r}")
    return hours


def _pick(rng: np.random.Generator, options: Sequence[tuple[Any, float]]) -> Any:
    p = np.array([w for _, w in options], dtype=np.float64)
    return options[int(rng.choice(len(options), p=p / p.sum()))][0]


def _stem(rng: np.random.Generator) -> tuple[str, str]:
    return PLACE_STEMS[int(rng.integers(len(PLACE_STEMS)))]


def _street(rng: np.random.Generator, core: bool) -> tuple[str, str]:
    zh, en = _stem(rng)
    if core and rng.random() < 0.35:
        s_zh, s_en = HUTONG_SUFFIXES[int(rng.integers(len(HUTONG_SUFFIXES)))]
        if s_zh == "条":
            k = int(rng.integers(1, 9))
            return f"{zh}{'一二三四五六七八'[k - 1]}条", f"{en} {k} Tiao"
        return f"{zh}{s_zh}", f"{en} {s_en}"
    s_zh, s_en = STREET_SUFFIXES[int(rng.integers(len(STREET_SUFFIXES)))]
    return f"{zh}{s_zh}", f"{en} {s_en}"


def _host(rng: np.random.Generator, host_type: str, district: District, kind: str
          ) -> tuple[str, str, str, str]:
    """(host name zh, host name en, operator, address)."""
    core = district.adcode in URBAN_CORE
    street_zh, street_en = _street(rng, core)
    number = int(rng.integers(1, 300))
    address = f"北京市{district.name_zh}{street_zh}{number}号"
    stem_zh, stem_en = _stem(rng)
    unit = "街道" if core or rng.random() < 0.6 else "镇"
    unit_en = "Subdistrict" if unit == "街道" else "Town"
    if host_type == "convenience_store":
        chain_zh, chain_en = CONVENIENCE_CHAINS[int(rng.integers(len(CONVENIENCE_CHAINS)))]
        zh, en = f"{chain_zh}（{street_zh}店）", f"{chain_en} ({street_en})"
        operator = zh
    elif host_type == "fuel_station":
        zh, en = f"{stem_zh}加油站", f"{stem_en} Fuel Station"
        operator = zh
    elif host_type == "bank":
        bank_zh, bank_en = BANKS[int(rng.integers(len(BANKS)))]
        zh, en = f"{bank_zh}{stem_zh}支行", f"{bank_en} {stem_en} Sub-branch"
        operator = zh
    elif host_type == "estate_agency":
        ag_zh, ag_en = ESTATE_AGENCIES[int(rng.integers(len(ESTATE_AGENCIES)))]
        zh, en = f"{ag_zh}{stem_zh}店", f"{ag_en} {stem_en} Branch"
        operator = f"{ag_zh}经纪有限公司"
    elif host_type == "union_station":
        zh = f"{stem_zh}{unit}工会服务站"
        en = f"{stem_en} {unit_en} Trade Union Service Station"
        operator = f"{district.name_zh}{stem_zh}{unit}总工会"
        address = f"北京市{district.name_zh}{street_zh}{number}号（{stem_zh}{unit}办事处）"
    elif host_type == "community_centre":
        zh, en = f"{stem_zh}社区服务中心", f"{stem_en} Community Service Centre"
        operator = f"{stem_zh}社区居民委员会"
    elif host_type == "mall":
        if kind == "worker_home":
            zh, en = f"{stem_zh}商圈", f"{stem_en} Shopping District"
            operator = f"{district.name_zh}{stem_zh}商圈联合工会"
        else:
            zh, en = f"{stem_zh}购物中心", f"{stem_en} Shopping Centre"
            operator = f"{stem_zh}购物中心管理有限公司"
        floor = int(rng.integers(1, 6))
        address = f"北京市{district.name_zh}{street_zh}{number}号{stem_zh}购物中心{floor}层"
    elif host_type == "hospital":
        zh, en = f"{stem_zh}医院", f"{stem_en} Hospital"
        operator = zh
    elif host_type == "park":
        zh, en = f"{stem_zh}公园", f"{stem_en} Park"
        operator = f"{stem_zh}公园管理处"
    elif host_type == "bus_station":
        zh, en = f"{stem_zh}长途汽车站", f"{stem_en} Long-distance Bus Station"
        operator = zh
    elif host_type == "stadium":
        zh, en = f"{stem_zh}体育馆", f"{stem_en} Gymnasium"
        operator = zh
    elif host_type == "workplace":
        ind_zh, ind_en = INDUSTRIES[int(rng.integers(len(INDUSTRIES)))]
        zh, en = f"北京{stem_zh}{ind_zh}有限公司", f"Beijing {stem_en} {ind_en} Co., Ltd."
        operator = zh
        address = f"北京市{district.name_zh}{street_zh}{number}号{stem_zh}大厦"
    elif host_type == "office_park":
        zh, en = f"{stem_zh}科技园", f"{stem_en} Science Park"
        operator = f"{stem_zh}科技园联合工会"
        address = f"北京市{district.name_zh}{street_zh}{number}号{stem_zh}科技园"
    else:  # pragma: no cover - guarded by HOST_WEIGHTS
        raise ValueError(host_type)
    return zh, en, operator, address


def _amenities(rng: np.random.Generator, kind: str, host_type: str) -> list[str]:
    probs = dict(AMENITY_PROBS[kind])
    if kind == "warm_station":
        probs["toilet"] = TOILET_BY_HOST.get(host_type, probs["toilet"])
        probs["lockers"] = LOCKERS_BY_HOST.get(host_type, probs["lockers"])
        if host_type == "fuel_station":
            probs["microwave"] = 0.3
    draws = rng.random(len(AMENITIES))
    chosen = [code for code, u in zip(AMENITIES, draws) if u < probs.get(code, 0.0)]
    if kind == "mother_baby_room" and "nursing_chair" not in chosen and "seating" not in chosen:
        chosen.insert(0, "seating")  # a room to breastfeed in has somewhere to sit
    if kind == "warm_station" and "drinking_water" not in chosen and "seating" not in chosen:
        chosen.insert(0, "drinking_water")
    return [code for code in AMENITIES if code in chosen]


def _notes(rng: np.random.Generator, kind: str, hours: str, amenities: list[str]) -> str | None:
    if hours.startswith("Nov-Mar"):
        return "供暖季延长开放时间 / Longer hours in the heating season (Nov–Mar)"
    u = rng.random()
    if kind == "warm_station":
        if "toilet" in amenities and u < 0.15:
            return "卫生间对户外劳动者开放 / Toilet open to outdoor workers"
        if "microwave" in amenities and u < 0.25:
            return "可用微波炉加热饭菜 / Microwave available for heating meals"
        if "PH off" in hours and u < 0.32:
            return "法定节假日不开放 / Closed on public holidays"
    elif kind == "mother_baby_room" and u < 0.2:
        return "请向前台或保安领取钥匙 / Ask reception or security for the key"
    elif kind == "worker_home" and u < 0.4:
        return "提供工会会员卡服务和阅览区 / Union-card services and a reading corner"
    return None


def _phone(rng: np.random.Generator) -> str | None:
    if rng.random() < NO_PHONE_SHARE:
        return None
    return f"010-5{int(rng.integers(0, 1000)):03d}-{int(rng.integers(0, 10000)):04d}"


def _site_properties(rng: np.random.Generator, kind: str, source_id: str, district: District
                     ) -> dict[str, Any]:
    weights = HOST_WEIGHTS[kind]
    if kind == "warm_station" and district.adcode in URBAN_CORE:
        # few fuel stations inside the old city
        weights = tuple((h, w * (0.2 if h == "fuel_station" else 1.0)) for h, w in weights)
    host_type = _pick(rng, weights)
    host_zh, host_en, operator, address = _host(rng, host_type, district, kind)
    hours = _checked_hours(_pick(rng, WORKER_HOME_HOURS if kind == "worker_home" else HOURS[host_type]))
    amenities = _amenities(rng, kind, host_type)
    suffix_zh, suffix_en = KIND_NAME_SUFFIX[kind]
    if kind == "worker_home" and host_type == "mall":
        suffix_zh, suffix_en = PUBLIC_AREA_SUFFIX
    return {
        "source_id": source_id,
        "kind": kind,
        "name_zh": f"{host_zh}{suffix_zh}",
        "name_en": f"{host_en} {suffix_en}",
        "address": address,
        "district_adcode": district.adcode,
        "opening_hours": hours,
        "amenities": amenities,
        "operator": operator,
        "phone": _phone(rng),
        "notes": _notes(rng, kind, hours, amenities),
        "host_type": host_type,
        "simulated": True,
    }


def _metadata(kind: str, seed: int, counts: dict[str, int], districts: Sequence[District]) -> dict[str, Any]:
    names = {d.adcode: d.name_en for d in districts}
    fixed = FIXED_DISTRICT_COUNTS.get(kind, {})
    return {
        "simulated": True,
        "description": SIMULATED_SENTENCE,
        "kind": kind,
        "kind_zh": KIND_LABELS[kind]["zh"],
        "kind_en": KIND_LABELS[kind]["en"],
        "count": sum(counts.values()),
        "counts_by_district": {f"{code} {names[code]}": n for code, n in counts.items()},
        "sizing": (
            "City total from Beijing trade-union reporting: 9,650 warm stations by end of 2018 (644 in "
            "Dongcheng), 2,020 mother-and-baby rooms (2019), 159 workers' homes (14 public-area + 145 model)"
        ),
        "allocation": (
            f"district share proportional to population_2020 * (population_2020 / area_km2) ** "
            f"{ALLOCATION_ALPHA[kind]}, largest-remainder rounding"
            + (f"; fixed: {', '.join(f'{c} {names[c]} = {n}' for c, n in fixed.items())}" if fixed else "")
            + "; inside a district: Gaussian clusters around approximate built-up centres plus a uniform "
              "background share, rejection-sampled inside the district polygon"
        ),
        "licence": f"{LICENCE} (generated data, dedicated to the public domain)",
        "datum": "WGS-84 (EPSG:4326)",
        "coordinate_decimals": 6,
        "districts_layer": DISTRICTS_FILENAME,
        "generator": "tools.layers.demo_sites.generate_demo_sites",
        "seed": seed,
        "reference_date": REFERENCE_DATE,
        "phones": "random and fictional (010-5xxx-xxxx); do not call",
    }


def generate_demo_sites(districts_path: Path, out_dir: Path, seed: int = DEFAULT_SEED) -> dict[str, int]:
    """Write the three simulated site layers into ``out_dir``; return the number of sites per kind.

    Deterministic: the same districts file and seed give byte-identical files.
    """
    districts = load_districts(Path(districts_path))
    out_dir = Path(out_dir)
    rng = np.random.default_rng(seed)
    kind_rngs = rng.spawn(len(TOTAL_COUNTS))  # one independent stream per kind
    totals: dict[str, int] = {}
    for kind, krng in zip(TOTAL_COUNTS, kind_rngs):
        counts = district_counts(kind, districts)
        features = []
        serial = 0
        for district in districts:
            others = [d for d in districts if d.adcode != district.adcode]
            pts = sample_points(krng, district, others, counts[district.adcode])
            for lon, lat in pts:
                serial += 1
                sid = f"{ID_PREFIX[kind]}-{serial:05d}"
                props = _site_properties(krng, kind, sid, district)
                features.append(point_feature(sid, float(lon), float(lat), props))
        text = feature_collection_text(features, f"sites_{kind}_simulated",
                                       _metadata(kind, seed, counts, districts))
        write_text(out_dir / OUTPUT_FILES[kind], text)
        totals[kind] = len(features)
        LOGGER.info("%s: %d simulated sites", kind, len(features))
    return totals


def main(argv: list[str] | None = None) -> int:
    """Command-line entry: ``python -m tools.layers.demo_sites [DISTRICTS_PATH [OUT_DIR]]``."""
    args = sys.argv[1:] if argv is None else argv
    districts_path = Path(args[0]) if args else LAYERS_DIR / DISTRICTS_FILENAME
    out_dir = Path(args[1]) if len(args) > 1 else LAYERS_DIR
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    totals = generate_demo_sites(districts_path, out_dir)
    for kind, n in totals.items():
        print(f"{kind}: {n} simulated sites -> {out_dir / OUTPUT_FILES[kind]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
