"""A pyarrow schema derived from a pydantic model's field annotations.

So the fast columnar reader of the vote archive reads exactly the fields ``VoteEvent`` has: a
field added to the model is in the schema at once, and an annotation with no arrow type here
fails loudly (naming the field) instead of sending every read down the slow path.
"""

from __future__ import annotations

import types
import typing

import pyarrow as pa
from pydantic import BaseModel

# Python scalar -> its pyarrow type factory.
_SCALARS = {str: pa.string, int: pa.int64, float: pa.float64, bool: pa.bool_}


def arrow_schema(model: type[BaseModel]):
    """The pyarrow schema of ``model``: one field per model field, in declaration order."""
    return pa.schema([(name, arrow_type(field.annotation, f"{model.__name__}.{name}"))
                      for name, field in model.model_fields.items()])


def arrow_type(annotation, where: str = "field"):
    """The pyarrow type of one annotation: ``str``, ``int``, ``float``, ``bool``, a ``Literal`` of
    strings, ``list[...]``, a nested pydantic model (a struct), and ``X | None`` (nullable, as
    every arrow field is)."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        present = [arg for arg in args if arg is not type(None)]
        if len(present) == 1:
            return arrow_type(present[0], where)
    elif origin is typing.Literal and all(isinstance(arg, str) for arg in args):
        return pa.string()
    elif origin is list and len(args) == 1:
        return pa.list_(arrow_type(args[0], where))
    elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return pa.struct([(name, arrow_type(field.annotation, f"{where}.{name}"))
                          for name, field in annotation.model_fields.items()])
    elif annotation in _SCALARS:
        return _SCALARS[annotation]()
    raise TypeError(f"{where}: no arrow type for the annotation {annotation!r}; "
                    "add a mapping in leaderboard/data/arrow_schema.py")
