"""The OpenAPI 3.0 document of ``/api``, generated from the collection definitions so it
cannot drift from what the routes accept."""

from __future__ import annotations

from ..store import features

_TYPES = {"string": "string", "integer": "integer", "number": "number", "boolean": "boolean"}


def _param(name: str, description: str, schema: dict, where: str = "query", required: bool = False) -> dict:
    return {"name": name, "in": where, "required": required, "description": description, "schema": schema}


def _error_responses() -> dict:
    ref = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    return {
        "400": {"description": "参数错误 / bad parameter", "content": ref},
        "401": {"description": "未登录或令牌无效 / no session or token", "content": ref},
        "403": {"description": "超出权限或管辖范围 / beyond the caller's role or jurisdiction", "content": ref},
        "404": {"description": "未找到 / not found", "content": ref},
        "503": {"description": "数据库不可用 / database unavailable", "content": ref},
    }


def _json_ok(description: str, schema: dict, media: str = "application/json") -> dict:
    return {"200": {"description": description, "content": {media: {"schema": schema}}}, **_error_responses()}


COMMON = {
    "bbox": _param(
        "bbox",
        "WGS-84 经纬度范围 minx,miny,maxx,maxy / box in CRS84",
        {"type": "array", "minItems": 4, "maxItems": 4, "items": {"type": "number"}},
    )
    | {"style": "form", "explode": False},
    "limit": _param(
        "limit", "每页条数 / page size", {"type": "integer", "minimum": 1, "maximum": 10000, "default": 100}
    ),
    "offset": _param("offset", "跳过条数 / items to skip", {"type": "integer", "minimum": 0, "default": 0}),
    "f": _param("f", "格式 / format", {"type": "string", "enum": ["json", "geojson", "csv"], "default": "json"}),
    "resulttype": _param(
        "resulttype",
        "hits 只返回匹配数 numberMatched / hits returns only the count",
        {"type": "string", "enum": ["results", "hits"], "default": "results"},
    ),
    "run": _param(
        "run", "分析编号，默认最近一次 / analysis run, the latest by default", {"type": "integer", "minimum": 1}
    ),
}


def _items_operation(coll: features.Collection) -> dict:
    sortable = sorted({p for p in coll.properties} | {f"-{p}" for p in coll.properties})
    params = [COMMON[name] for name in ("bbox", "limit", "offset", "f", "resulttype")]
    params.append(
        _param(
            "sortby",
            "排序属性，前缀 - 为降序 / properties to sort by, '-' for descending",
            {"type": "array", "items": {"type": "string", "enum": sortable}},
        )
        | {"style": "form", "explode": False}
    )
    if coll.run:
        params.append(COMMON["run"])
    params += [
        _param(name, f"按 {name} 筛选（相等）/ equal to", {"type": _TYPES[kind]})
        for name, (_, kind) in coll.properties.items()
    ]
    return {
        "summary": f"{coll.title} {coll.title_en}",
        "description": coll.description,
        "operationId": f"items_{coll.id.replace('-', '_')}",
        "tags": ["features"],
        "parameters": params,
        "responses": {
            "200": {
                "description": "要素集合 / features",
                "content": {
                    "application/geo+json": {"schema": {"$ref": "#/components/schemas/FeatureCollection"}},
                    "text/csv": {"schema": {"type": "string"}},
                },
            },
            **_error_responses(),
        },
    }


def _item_operation(coll: features.Collection) -> dict:
    kind = _TYPES[coll.properties[coll.fid][1]]
    params = [_param("featureId", f"{coll.fid}", {"type": kind}, where="path", required=True)]
    if coll.run:
        params.append(COMMON["run"])
    return {
        "summary": f"{coll.title}（单个）/ one of {coll.title_en}",
        "operationId": f"item_{coll.id.replace('-', '_')}",
        "tags": ["features"],
        "parameters": params,
        "responses": _json_ok("要素 / feature", {"$ref": "#/components/schemas/Feature"}, "application/geo+json"),
    }


def _write_operations(coll: features.Collection) -> tuple[dict, dict]:
    """The Part 4 operations of a writable collection: on its items, and on one item."""
    ref = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    body = {"required": True, "content": {"application/geo+json": {"schema": {"$ref": "#/components/schemas/Feature"}}}}
    patch = {"required": True, "content": {"application/merge-patch+json": {"schema": {"type": "object"}}}}
    if_match = _param("If-Match", "读取时的 ETag / the ETag the item was read with", {"type": "string"}, "header", True)
    fid = _param("featureId", coll.fid, {"type": _TYPES[coll.properties[coll.fid][1]]}, where="path", required=True)
    tag = coll.id.replace("-", "_")
    obj = {"type": "object"}
    saved = _json_ok("已保存的要素（附 ETag）/ the feature as stored, with its ETag", obj)
    conflicts = {
        "409": {"description": "编号已存在 / the id is taken", "content": ref},
        "412": {"description": "已被他人修改：附当前内容 / changed since read: the current values", "content": ref},
        "428": {"description": "缺少 If-Match / If-Match missing", "content": ref},
    }
    created = {
        "201": {
            "description": "已新增 / created (Location, ETag)",
            "content": {"application/geo+json": {"schema": obj}},
        }
    }
    create = {
        "summary": f"新增{coll.title} / create",
        "operationId": f"create_{tag}",
        "tags": ["edits"],
        "requestBody": body,
        "responses": {**created, **_error_responses(), **conflicts},
    }
    one = {
        "put": {
            "summary": "替换 / replace",
            "operationId": f"replace_{tag}",
            "tags": ["edits"],
            "parameters": [fid, if_match],
            "requestBody": body,
            "responses": {**saved, **conflicts},
        },
        "patch": {
            "summary": "更正（JSON 合并补丁）/ update (JSON merge patch)",
            "operationId": f"update_{tag}",
            "tags": ["edits"],
            "parameters": [fid, if_match],
            "requestBody": patch,
            "responses": {**saved, **conflicts},
        },
        "delete": {
            "summary": "删除（管理员）/ delete (admins)",
            "operationId": f"delete_{tag}",
            "tags": ["edits"],
            "parameters": [fid, if_match],
            "responses": {"204": {"description": "已删除 / deleted"}, **_error_responses(), **conflicts},
        },
    }
    return create, one


def document(server: str) -> dict:
    """The OpenAPI document for a service whose ``/api`` is at ``server``."""
    obj = {"type": "object"}
    paths = {
        "/": {"get": {"summary": "入口 / landing page", "operationId": "landing", "responses": _json_ok("入口", obj)}},
        "/conformance": {
            "get": {"summary": "符合的标准 / conformance", "operationId": "conformance", "responses": _json_ok("", obj)}
        },
        "/collections": {
            "get": {"summary": "全部集合 / collections", "operationId": "collections", "responses": _json_ok("", obj)}
        },
        "/runs": {
            "get": {"summary": "分析记录 / analysis runs", "operationId": "runs", "responses": _json_ok("", obj)}
        },
        "/stats/{level}": {
            "get": {
                "summary": "各级区域、场所或行业的数量与覆盖率 / counts and rates per area, place or industry",
                "operationId": "stats",
                "parameters": [
                    _param(
                        "level",
                        "层级 / level",
                        {
                            "type": "string",
                            "enum": ["city", "district", "street", "community", "grid", "place", "industry"],
                        },
                        where="path",
                        required=True,
                    ),
                    COMMON["run"],
                ],
                "responses": _json_ok("", obj),
            }
        },
        "/stats/compare": {
            "get": {
                "summary": "两次分析的比较 / comparison of two runs",
                "operationId": "compare",
                "parameters": [
                    _param("a", "前一次 / before", {"type": "integer", "minimum": 1}, required=True),
                    _param("b", "后一次 / after", {"type": "integer", "minimum": 1}, required=True),
                ],
                "responses": _json_ok("", obj),
            }
        },
    }
    for coll in features.COLLECTIONS.values():
        paths[f"/collections/{coll.id}"] = {
            "get": {
                "summary": f"{coll.title} {coll.title_en}",
                "operationId": f"collection_{coll.id.replace('-', '_')}",
                "responses": _json_ok("集合说明 / collection", obj),
            }
        }
        paths[f"/collections/{coll.id}/items"] = {"get": _items_operation(coll)}
        paths[f"/collections/{coll.id}/items/{{featureId}}"] = {"get": _item_operation(coll)}
        if coll.writable:
            create, one = _write_operations(coll)
            paths[f"/collections/{coll.id}/items"]["post"] = create
            paths[f"/collections/{coll.id}/items/{{featureId}}"] |= one
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "红图 Hongtu API",
            "version": "1.0",
            "description": "两新组织党建地图的开放接口，遵循 OGC API – Features 第 1 部分 / "
            "open API of Hongtu, an OGC API – Features (Part 1) service",
        },
        "servers": [{"url": server}],
        "paths": paths,
        # A token from `hongtu token api USER` (or a signed-in session) acts as that user.
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["code", "description"],
                    "properties": {
                        "code": {"type": "string"},
                        "description": {"type": "string"},
                        "parameter": {"type": "string"},
                    },
                },
                "Feature": {
                    "type": "object",
                    "required": ["type", "geometry", "properties"],
                    "properties": {
                        "type": {"type": "string", "enum": ["Feature"]},
                        "id": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
                        "geometry": {"type": "object", "nullable": True},
                        "properties": {"type": "object", "nullable": True},
                    },
                },
                "FeatureCollection": {
                    "type": "object",
                    "required": ["type", "features"],
                    "properties": {
                        "type": {"type": "string", "enum": ["FeatureCollection"]},
                        "features": {"type": "array", "items": {"$ref": "#/components/schemas/Feature"}},
                        "numberMatched": {"type": "integer"},
                        "numberReturned": {"type": "integer"},
                        "links": {"type": "array", "items": {"type": "object"}},
                    },
                },
            },
        },
    }
