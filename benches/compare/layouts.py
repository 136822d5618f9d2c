"""Rewrites an archive object by object, keeping every key, in another writer's layout.

    layouts.py SRC DST LAYOUT

LAYOUT is one of:
  pyarrow-default  pyarrow's defaults: snappy, dictionary, 1 MiB pages, row groups of up to
                   1 Mi rows, no page index
  pyarrow-spark    what Spark (parquet-mr) writes by default: snappy, 1 MiB pages, one large
                   row group per object, page index
  pyarrow-zstd     zstd, dictionary, 1 MiB pages, 122,880-row groups, page index (a common
                   pyarrow set-up, the one issue 14 measured)
  duckdb           DuckDB's COPY ... (FORMAT parquet) defaults
  polars           Python polars' write_parquet defaults
"""
import pathlib
import sys


def write(layout, src, dst):
    if layout == "generator":
        import shutil

        shutil.copyfile(src, dst)
    elif layout.startswith("pyarrow"):
        import pyarrow.parquet as pq

        table = pq.read_table(src)
        opts = {
            "pyarrow-default": {},
            "pyarrow-spark": dict(
                compression="snappy", data_page_size=1 << 20, write_page_index=True,
                row_group_size=max(1, table.num_rows),
            ),
            "pyarrow-zstd": dict(
                compression="zstd", data_page_size=1 << 20, write_page_index=True,
                row_group_size=122_880,
            ),
        }[layout]
        pq.write_table(table, dst, **opts)
    elif layout == "duckdb":
        import duckdb

        duckdb.sql(f"COPY (SELECT * FROM read_parquet('{src}')) TO '{dst}' (FORMAT parquet)")
    elif layout == "polars":
        import polars as pl

        pl.read_parquet(src).write_parquet(dst)
    else:
        sys.exit(f"layouts.py: unknown layout {layout}")


def main(src, dst, layout):
    src, dst = pathlib.Path(src), pathlib.Path(dst)
    files = sorted(src.rglob("*.parquet"))
    if not files:
        sys.exit(f"layouts.py: no *.parquet under {src}")
    for f in files:
        out = dst / f.relative_to(src)
        out.parent.mkdir(parents=True, exist_ok=True)
        write(layout, str(f), str(out))
    print(f"{layout}: {len(files)} objects under {dst}", file=sys.stderr)


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
