"""The databases a run uses: SQLite files and throwaway PostgreSQL databases (``base``, ``postgres``), with what
plugins may ask of them (capabilities such as ``count_rows``, ``take_write_lock``), and the sweep of what
an earlier run left behind."""
