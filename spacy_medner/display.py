"""displaCy colours: one per medical label of the supported corpora.

    from spacy import displacy
    from spacy_medner.display import COLORS
    displacy.render(doc, style="ent", options={"colors": COLORS})
"""
COLORS = {
    # CCKS2019
    "解剖部位": "#8ecae6",
    "疾病和诊断": "#ff8fa3",
    "药物": "#b5e48c",
    "实验室检验": "#ffd166",
    "手术": "#cdb4db",
    "影像检查": "#f4a261",
    # CMeEE
    "bod": "#8ecae6", "dis": "#ff8fa3", "dru": "#b5e48c", "ite": "#ffd166", "pro": "#cdb4db",
    "sym": "#f28482", "mic": "#84a59d", "equ": "#bde0fe", "dep": "#e9c46a",
    # ROCLING / HealthNER
    "BODY": "#8ecae6", "SYMP": "#f28482", "DISE": "#ff8fa3", "DRUG": "#b5e48c", "CHEM": "#90be6d",
    "EXAM": "#ffd166", "TREAT": "#cdb4db", "INST": "#bde0fe", "SUPP": "#e9c46a", "TIME": "#d9d9d9",
    # tcm_manual
    "SYMPTOM": "#f28482", "DISEASE": "#ff8fa3", "DRUG_EFFICACY": "#a7c957", "PERSON_GROUP": "#bde0fe",
    "SYNDROME": "#e5989b", "DRUG_TASTE": "#fcbf49", "DRUG_DOSAGE": "#f4a261", "DRUG_INGREDIENT": "#90be6d",
    "FOOD_GROUP": "#e9c46a", "DISEASE_GROUP": "#ffafcc", "FOOD": "#ffe5b4", "DRUG_GROUP": "#b5e48c",
}
