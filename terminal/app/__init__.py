"""The cashier application: the sale flow driven by keypad actions, swipes and scans.

``flow.Till`` is the state machine; it talks to the ledger through ``ledger.LedgerGateway`` (one
"ledger" thread), to the customer through ``screens.Displays`` (pole display and LCD) and to the
printer and drawer through ``printing.ReceiptDesk`` (one "printer" thread), so the event loop never
waits on SQLite fsyncs, serial writes or USB.
"""
