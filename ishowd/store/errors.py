"""Store errors, phrased for operators (the programs print them without a traceback)."""

EX_DATAERR = 65


class StoreError(Exception):
    exit_code = 1


class SchemaTooNew(StoreError):
    exit_code = EX_DATAERR


class NoStore(StoreError):
    exit_code = 1
