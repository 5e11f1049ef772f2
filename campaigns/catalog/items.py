"""The catalog: items a recommendation can show, their categories, and the CSV import of items.

Item CSV columns (header names matched loosely): `sku` (or `id`, `item_id`, `stock_code`;
required), `name` (or `description`), `url`, `price`, `image` (or `image_url`), `category`,
`enabled`. Items upsert on `sku`; what the file leaves empty keeps its stored value. When no
category is given, one is derived from the name's keywords (see `categorize`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from campaigns.contacts.records import parse_consent
from campaigns.errors import InputError, NotFound, StateError
from campaigns.imports.stream import ImportReport, Row, SeenKeys, bulk_insert
from models import Item, utcnow

# First match wins, so the specific come before the general ("christmas candle" is christmas).
CATEGORY_KEYWORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("christmas", ("CHRISTMAS", "XMAS", "ADVENT", "SANTA", "REINDEER", "SNOWFLAKE", "NATIVITY", "BAUBLE")),
    ("easter", ("EASTER", "EGG", "CHICK", "BUNNY", "RABBIT")),
    ("jewellery & accessories", ("NECKLACE", "NECKL", "BRACELET", "EARRINGS", "RING", "BROOCH", "DIAMANTE", "BEAD", "BEADS",
                   "CHARM", "HAIR", "BLING", "JEWELLED", "JEWELLERY", "BANGLE", "UMBRELLA", "HAT", "SCARF",
                   "GLOVES", "HAND WARMER", "LUGGAGE", "WALLET", "KEYRING", "BADGE")),
    ("bath & beauty", ("BATH", "SPONGE", "SOAP", "TOWEL", "TOWELS", "LIP", "GLOSS", "COSMETIC", "MAKE UP",
                       "WASHBAG", "SHOWER")),
    ("crafts & sewing", ("SEWING", "RIBBON", "RIBBONS", "CROCHET", "KNITTING", "BUTTONS", "REEL", "THREAD",
                         "CRAFT", "FELTCRAFT", "EMBROIDERY", "STITCH")),
    ("candles & lights", ("CANDLE", "CANDLES", "T-LIGHT", "T-LIGHTS", "TEALIGHT", "LANTERN", "LIGHT", "LIGHTS",
                          "LAMP", "INCENSE", "NIGHTLIGHT", "MATCHES")),
    ("party", ("PARTY", "BIRTHDAY", "BUNTING", "BALLOON", "BALLOONS", "GARLAND", "CONFETTI", "NAPKINS",
               "CASES", "STRAWS", "PAPER CHAIN")),
    ("stationery", ("CARD", "CARDS", "WRAP", "PAPER", "NOTEBOOK", "PENCIL", "PENCILS", "PEN", "STICKER",
                    "STICKERS", "CALENDAR", "JOURNAL", "ENVELOPE", "ENVELOPES", "TAPE", "NOTE", "LETTER",
                    "BOOK", "ERASER", "ERASERS", "RUBBER", "TISSUES", "STATIONERY", "PENS")),
    ("kitchen", ("MUG", "MUGS", "CUP", "CUPS", "TEA", "TEACUP", "COFFEE", "CAKE", "BAKING", "PLATE", "PLATES",
                 "BOWL", "BOWLS", "CUTLERY", "SPOON", "SPOONS", "KITCHEN", "APRON", "LUNCH", "JAM", "PANTRY",
                 "DINNER", "DISH", "TRAY", "JUG", "GLASS", "CHOPSTICKS", "TEAPOT", "OVEN", "RECIPE",
                 "BOTTLE", "SUGAR", "MILK", "BISCUIT", "CHOCOLATE", "PICNIC", "BEAKERS", "BREAD", "COOKIE",
                 "CUTTERS", "PLACEMATS", "COASTERS", "COASTER", "TOAST", "SAUCER", "TUMBLER", "JELLY")),
    ("bags", ("BAG", "BAGS", "TOTE", "SHOPPER", "PURSE", "BACKPACK", "RUCKSACK", "HANDBAG", "CHARLIE+LOLA")),
    ("toys & games", ("TOY", "TOYS", "GAME", "GAMES", "PUZZLE", "JIGSAW", "DOLL", "DOLLY", "SPACEBOY",
                      "CHILDRENS", "CHILDREN'S", "KIDS", "PLAYHOUSE", "SKIPPING", "DOMINOES", "CRAYONS",
                      "TEDDY", "MAGIC", "BALL", "SOLDIER", "BUILDING BLOCK", "PAINT SET", "SNAKES", "PIGGY BANK",
                      "SPINNING", "TATTOOS", "GLOBE", "MARBLES", "COLOURING", "SPACE")),
    ("garden", ("GARDEN", "PLANT", "PLANTER", "WATERING", "BIRD", "BIRDHOUSE", "FEEDER", "SEED", "POT",
                "PARASOL", "WINDMILL", "GNOME")),
    ("storage", ("BOX", "BOXES", "TIN", "TINS", "BASKET", "STORAGE", "DRAWER", "CABINET", "JAR", "JARS",
                 "CRATE", "CASE", "TRUNK", "HOLDER")),
    ("home decor", ("FRAME", "SIGN", "CLOCK", "CUSHION", "MIRROR", "DOORMAT", "HOOK", "HOOKS", "HANGER",
                    "HANGERS", "ORNAMENT", "DECORATION", "VASE", "HEART", "WREATH", "WALL", "DOOR", "KNOB",
                    "TILE", "MAGNET", "MAGNETS", "COAT", "THROW", "BLANKET", "HOT WATER", "PLAQUE", "CHANDELIER",
                    "CURTAIN", "RUG", "PICTURE", "PHOTO", "ART", "STAND", "RACK", "SHELF", "DOORSTOP", "DUCKS",
                    "QUILT", "CHALKBOARD", "BLACKBOARD", "BLACK BOARD", "BIN", "LETTERS", "WORD", "ORGANISER",
                    "BUCKET", "STAR", "TREE", "BELLS", "BELL", "HANGING", "DOORSTOP", "WINDCHIME", "CHIME")),
)  # fmt: skip
OTHER = "other"
_WORD = re.compile(r"[A-Z0-9'+&/-]+")

ITEM_ALIASES = {
    "id": "sku",
    "item_id": "sku",
    "stock_code": "sku",
    "stockcode": "sku",
    "product_id": "sku",
    "description": "name",
    "title": "name",
    "image": "image_url",
    "image_link": "image_url",
    "link": "url",
    "unit_price": "price",
    "unitprice": "price",
}
EDITABLE = ("sku", "name", "url", "price", "image_url", "category", "enabled")
LIMITS = {"sku": 100, "name": 500, "url": 2000, "image_url": 2000, "category": 200}


def categorize(description: str) -> str:
    """A category from a product description's keywords: "other" when none matches."""
    text = description.upper()
    words = set(_WORD.findall(text))
    for category, keywords in CATEGORY_KEYWORDS:
        for keyword in keywords:
            if (" " in keyword and keyword in text) or keyword in words:
                return category
    return OTHER


def display_name(description: str) -> str:
    """ "WHITE HANGING HEART T-LIGHT HOLDER" -> "White Hanging Heart T-Light Holder"."""
    text = " ".join(description.split())
    return text.title() if text.isupper() else text


def parse_price(raw: Any, where: str = "price") -> float:
    if isinstance(raw, bool):
        raise InputError(f"price must be a number, not {raw!r}", where=where)
    try:
        price = float(str(raw).strip().replace(",", "")) if isinstance(raw, str) else float(raw)
    except (TypeError, ValueError):
        raise InputError(f"price must be a number, not {raw!r}", where=where) from None
    if price != price or price < 0 or price == float("inf"):
        raise InputError(f"price must be a number >= 0, not {raw!r}", where=where)
    return round(price, 4)


def parse_url(raw: str, where: str = "url") -> str:
    url = raw.strip()
    if url and not re.match(r"^https?://[^\s/]+", url, re.IGNORECASE):
        raise InputError(f"{where} must start with http:// or https://, not {raw!r}", where=where)
    return url


def clean_item_text(field: str, raw: Any) -> str:
    if not isinstance(raw, str):
        raise InputError(f"{field} must be text", where=field)
    text = " ".join(raw.split())
    if len(text) > LIMITS[field]:
        raise InputError(f"{field} is longer than {LIMITS[field]} characters", where=field)
    return text


def item_fields(values: Mapping[str, Any], *, partial: bool) -> dict[str, Any]:
    """Validated item columns from API input. Raises InputError naming the field."""
    unknown = set(values) - set(EDITABLE)
    if unknown:
        raise InputError(
            f"unknown fields {sorted(unknown)}; use {', '.join(EDITABLE)}", where=sorted(unknown)[0]
        )
    if not partial and not str(values.get("sku", "")).strip():
        raise InputError("sku is required", where="sku")
    fields: dict[str, Any] = {}
    for name, raw in values.items():
        if name == "price":
            fields[name] = parse_price(raw)
        elif name == "enabled":
            if not isinstance(raw, bool):
                raise InputError("enabled must be true or false", where="enabled")
            fields[name] = raw
        else:
            text = clean_item_text(name, raw)
            fields[name] = parse_url(text, name) if name in ("url", "image_url") else text
    if "sku" in fields and not fields["sku"]:
        raise InputError("sku may not be empty", where="sku")
    if not partial and not fields.get("category"):
        fields["category"] = categorize(fields.get("name", ""))
    return fields


def get_item(session: Session, item_id: int) -> Item:
    item = session.get(Item, item_id)
    if item is None:
        raise NotFound(f"item {item_id} does not exist")
    return item


def create_item(session: Session, values: Mapping[str, Any]) -> Item:
    fields = item_fields(values, partial=False)
    other = session.scalar(sa.select(Item.id).where(Item.sku == fields["sku"]))
    if other is not None:
        raise StateError(f"item {other} already has sku {fields['sku']!r}")
    item = Item(**fields)
    session.add(item)
    session.flush()
    return item


def update_item(session: Session, item_id: int, values: Mapping[str, Any]) -> Item:
    item = get_item(session, item_id)
    fields = item_fields(values, partial=True)
    if "sku" in fields:
        other = session.scalar(sa.select(Item.id).where(Item.sku == fields["sku"], Item.id != item_id))
        if other is not None:
            raise StateError(f"item {other} already has sku {fields['sku']!r}")
    for name, value in fields.items():
        setattr(item, name, value)
    session.flush()
    return item


@dataclass(frozen=True)
class ItemPage:
    items: list[Item]
    total: int
    next_after: int | None


SORTABLE_ITEMS = {"sku": Item.sku, "name": Item.name, "category": Item.category, "price": Item.price}


def _item_conditions(query: str, category: str | None) -> list[sa.ColumnElement[bool]]:
    conditions: list[sa.ColumnElement[bool]] = []
    if query.strip():
        escaped = query.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        conditions.append(
            sa.or_(Item.sku.ilike(f"%{escaped}%", escape="\\"), Item.name.ilike(f"%{escaped}%", escape="\\"))
        )
    if category:
        conditions.append(Item.category == category)
    return conditions


def sorted_items(
    session: Session,
    *,
    query: str = "",
    category: str | None = None,
    sort: str = "name",
    descending: bool = False,
    offset: int = 0,
    limit: int = 50,
) -> tuple[list[Item], int]:
    """One page of items ordered by a column (ties by id), and how many match in all."""
    conditions = _item_conditions(query, category)
    total = int(session.scalar(sa.select(sa.func.count()).select_from(Item).where(*conditions)) or 0)
    column = SORTABLE_ITEMS.get(sort, Item.name)
    order = (
        [column.desc().nulls_last(), Item.id.desc()] if descending else [column.asc().nulls_last(), Item.id]
    )
    rows = session.scalars(sa.select(Item).where(*conditions).order_by(*order).offset(offset).limit(limit))
    return list(rows), total


def search_items(
    session: Session, *, query: str = "", category: str | None = None, after: int = 0, limit: int = 50
) -> ItemPage:
    if not 1 <= limit <= 1000:
        raise InputError("limit must be between 1 and 1000", where="limit")
    conditions = _item_conditions(query, category)
    total = int(session.scalar(sa.select(sa.func.count()).select_from(Item).where(*conditions)) or 0)
    items = list(
        session.scalars(
            sa.select(Item).where(Item.id > after, *conditions).order_by(Item.id).limit(limit + 1)
        )
    )
    more = len(items) > limit
    items = items[:limit]
    return ItemPage(items, total, items[-1].id if more else None)


def categories(session: Session) -> list[tuple[str, int]]:
    rows = session.execute(
        sa.select(Item.category, sa.func.count()).group_by(Item.category).order_by(Item.category)
    )
    return [(category, int(n)) for category, n in rows]


class ItemImporter:
    kind = "items"
    tables = ("items",)
    aliases = ITEM_ALIASES

    def __init__(self) -> None:
        self.seen = SeenKeys()

    def check_header(self, columns: Sequence[str]) -> None:
        if "sku" not in columns:
            raise InputError(
                f"missing required column sku (or id) (the header has: {', '.join(columns)})", where="sku"
            )

    def import_chunk(self, session: Session, rows: list[Row], report: ImportReport) -> None:
        parsed: dict[str, dict[str, Any]] = {}
        for row in rows:
            fields = self._parse(row, report)
            if fields is not None:
                parsed[fields["sku"]] = fields
        if not parsed:
            return
        existing = dict(session.execute(sa.select(Item.sku, Item.id).where(Item.sku.in_(list(parsed)))).all())
        now = utcnow()
        inserts = []
        updates: list[dict[str, Any]] = []
        for sku, fields in parsed.items():
            if sku in existing:
                updates.append({"id": existing[sku], **{k: v for k, v in fields.items() if v != ""}})
            else:
                if not fields.get("category"):
                    fields["category"] = categorize(fields.get("name", ""))
                defaults = {"name": "", "url": "", "price": 0.0, "image_url": "", "enabled": True}
                inserts.append({**defaults, "created_at": now, **fields})
        if inserts:
            for keys in {tuple(sorted(i)) for i in inserts}:
                bulk_insert(session, Item, [i for i in inserts if tuple(sorted(i)) == keys])
        for keys in {tuple(sorted(u)) for u in updates}:
            session.execute(sa.update(Item), [u for u in updates if tuple(sorted(u)) == keys])
        report.rows_imported += len(parsed)

    def _parse(self, row: Row, report: ImportReport) -> dict[str, Any] | None:
        values = row.values
        fields: dict[str, Any] = {}
        ok = True
        for name in ("sku", "name", "url", "image_url", "category"):
            if name not in values:
                continue
            try:
                text = clean_item_text(name, values[name])
                fields[name] = parse_url(text, name) if name in ("url", "image_url") else text
            except InputError as exc:
                ok = False
                report.error(row.number, name, exc.message)
        if not fields.get("sku"):
            report.error(row.number, "sku", "sku is empty")
            return None
        if "name" in fields:
            fields["name"] = display_name(fields["name"])
        if values.get("price", "").strip():
            try:
                fields["price"] = parse_price(values["price"])
            except InputError as exc:
                ok = False
                report.error(row.number, "price", exc.message)
        if values.get("enabled", "").strip():
            try:
                fields["enabled"] = parse_consent(values["enabled"])
            except InputError:
                ok = False
                report.error(
                    row.number, "enabled", f"enabled must be true or false, not {values['enabled']!r}"
                )
        if not ok:
            return None
        first = self.seen.first_row(fields["sku"], row.number)
        if first is not None:
            report.error(
                row.number, "sku", f"duplicate of row {first}: sku {fields['sku']!r} (row {first} was used)"
            )
            return None
        return fields
