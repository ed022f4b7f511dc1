"""lodash 4.17.21's prototype-pollution guards, applied to the 4.17.4 `lodash.min.js` that the
`js.lodash` package ships (the only lodash on PyPI).

4.17.5 to 4.17.21 closed `_.set`, `_.setWith`, `_.update(With)`, `_.zipObjectDeep` (all through
`baseSet`) and `_.merge`, `_.mergeWith`, `_.defaultsDeep` (through `baseMerge`/`baseMergeDeep`)
against `__proto__`, `constructor` and `prototype` path segments. The same three edits are made
here to the minified text, as 4.17.21 makes them in its source:

* `baseSet` returns the object untouched at the first `__proto__`/`constructor`/`prototype` key;
* `baseMergeDeep` and `baseMerge` read the destination's and the source's value through
  `safeGet` (nothing for `__proto__`, nothing for a `constructor` that is a function);
* `baseMergeDeep` never merges into a function (4.17.4 did for the first source).

Each edit must match exactly once: a different lodash text fails loudly here rather than
running unguarded.
"""

from __future__ import annotations

LODASH_VERSION = "4.17.4, with 4.17.21's prototype-pollution guards"

_SAFE_GET = (
    'function __lodashSafeGet(n,t){if("constructor"===t&&typeof n[t]=="function")return;'
    'if("__proto__"==t)return;return n[t]}'
)

# (what 4.17.4's lodash.min.js says, what 4.17.21 says instead)
_EDITS: tuple[tuple[str, str], ...] = (
    # baseSet
    (
        "var c=$e(t[u]),a=r;if(u!=o){",
        'var c=$e(t[u]),a=r;if("__proto__"===c||"constructor"===c||"prototype"===c)return n;if(u!=o){',
    ),
    # baseMerge / baseMergeDeep (inlined as `nr`): safeGet, and the helper itself
    ("function nr(n,t,r,e,u){", _SAFE_GET + "function nr(n,t,r,e,u){"),
    ("var f=u,c=n[o],a=t[o],l=f.get(a);", "var f=u,c=__lodashSafeGet(n,o),a=__lodashSafeGet(t,o),l=f.get(a);"),
    ("(!bu(c)||r&&gu(c))&&(l=Oe(a))", "(!bu(c)||gu(c))&&(l=Oe(a))"),
    ('else f=e?e(n[o],i,o+"",n,t,u):F', 'else f=e?e(__lodashSafeGet(n,o),i,o+"",n,t,u):F'),
)


class LodashMismatch(RuntimeError):
    """The lodash text is not the 4.17.4 build these edits were written for."""


def guarded(source: str) -> str:
    """`source` (lodash 4.17.4's lodash.min.js) with 4.17.21's guards."""
    for old, new in _EDITS:
        count = source.count(old)
        if count != 1:
            raise LodashMismatch(f"lodash.min.js: expected one {old!r}, found {count}; not the 4.17.4 build")
        source = source.replace(old, new)
    return source
