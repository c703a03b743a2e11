"""The batch side of the core: end-of-day files out, payment files in (served by the SFTP face).

``copybooks/*.cpy`` publish the record layouts; :mod:`.layouts` mirrors them for the mock's own
small EBCDIC codec (:mod:`.ebcdic`). :mod:`.eod` writes TXNHIST and STMT files, :mod:`.payments`
posts PAYIN files and writes PAYACK acknowledgments, :mod:`.watcher` polls the inbox.
"""
