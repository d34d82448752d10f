"""Model instances made from rows a statement written once reads.

For the few reads done on every run or every request (the key's user, the
assistant, the review rules): building their query through the ORM cost
several times more than running it. Each column goes through its field's
converters as the ORM's own reads do, so the instances are the ones the ORM
would make."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import connections
from django.db.models import Model


class Rows:
    """Reads every concrete field of `model`, under the table alias `alias`."""

    def __init__(self, model: type[Model], alias: str = "") -> None:
        self.model = model
        self.alias = alias or model._meta.db_table
        self.fields = model._meta.concrete_fields
        self.names = [field.attname for field in self.fields]
        self._made: dict[str, tuple[str, list[tuple[Any, list]]]] = {}

    def _for(self, using: str) -> tuple[str, list[tuple[Any, list]]]:
        # Per kind of database: the SQL and converters depend on nothing else.
        connection = connections[using]
        made = self._made.get(connection.vendor)
        if made is None:
            quote = connection.ops.quote_name
            columns = ", ".join(f"{quote(self.alias)}.{quote(f.column)}" for f in self.fields)
            cols = [field.get_col(self.alias) for field in self.fields]
            converters = [
                (col, connection.ops.get_db_converters(col) + col.get_db_converters(connection))
                for col in cols
            ]
            made = self._made[connection.vendor] = (columns, converters)
        return made

    def columns(self, using: str) -> str:
        """The SELECT list, in the order `make` takes the values."""
        return self._for(using)[0]

    def make(self, using: str, values: Sequence[Any]) -> Model:
        """The instance of one row's values (as many as `columns` names)."""
        connection = connections[using]
        converted = []
        for value, (col, each) in zip(values, self._for(using)[1], strict=True):
            for convert in each:
                value = convert(value, col, connection)
            converted.append(value)
        return self.model.from_db(using, self.names, converted)
