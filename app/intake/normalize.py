"""Names and addresses as a matcher compares them: one spelling for the many a ledger uses.

Shared by the duplicate check of imports and the matching of places in addresses. Every
function takes and answers a whole column (pandas string methods, no loop per row).

- full-width and half-width forms are one (Unicode NFKC: ``（`` → ``(``, ``Ａ`` → ``A``);
- spaces and brackets go (``云锦（昆明）科技`` = ``云锦昆明科技``), Latin letters are lower case;
- ``有限责任公司`` is ``有限公司``;
- a leading province, city and district (``云南省昆明市五华区…``) goes.
"""

from __future__ import annotations

import pandas as pd

_BRACKETS = r"[\s()\[\]{}【】〔〕<>《》\"'“”‘’·・,，.。、;；:：\-_]"
#: Leading administrative names: a province (or autonomous region), then a city, then a
#: district or county — each 2–7 characters before its suffix, as the codes' names are. A 区
#: that ends 社区, 小区, 园区, 景区, 校区, 厂区, 片区 or 营区 names no district: "翠湖西路社区"
#: stays whole.
_DISTRICT = r"[^省市区县]{1,7}(?:(?<![社小园景校厂片营])区|县)"
_ADMIN_PREFIX = rf"^(?:[^省市区县]{{2,7}}(?:省|自治区))?(?:[^省市区县]{{2,7}}市)?(?:{_DISTRICT})?"
_COMPANY_FORMS = {"有限责任公司": "有限公司", "股份有限公司": "股份公司"}


def normalized(values: pd.Series) -> pd.Series:
    """``values`` (text, missing allowed) in the one spelling described above; missing is ''."""
    text = values.astype(object).where(values.notna(), "").astype(str).str.normalize("NFKC").str.lower()
    text = text.str.replace(_BRACKETS, "", regex=True)
    for form, canonical in _COMPANY_FORMS.items():
        text = text.str.replace(form, canonical, regex=False)
    # Most texts name no province, city or district early on: the prefix pattern, the costly
    # step, runs on those that might.
    maybe = text.str[:16].str.contains("[省市区县]", regex=True).to_numpy()
    if maybe.any():
        text[maybe] = text[maybe].str.replace(_ADMIN_PREFIX, "", regex=True)
    return text
