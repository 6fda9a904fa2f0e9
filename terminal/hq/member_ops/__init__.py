"""HQ's member operations (adjust, freeze, lost-card replacement, merge, profile edit, erasure,
CSV import) and their publication to every till. Callers use :class:`MemberOps`
(:mod:`.service`) and catch :class:`MemberOpError` (:mod:`.errors`)."""
