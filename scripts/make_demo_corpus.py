"""Write the demo corpus in assets/demo/ (doccano JSON lines).

Sentences in the style of Chinese admission notes, written for this project
from hand-made templates and lexicons (no dataset text), with the CCKS2019
labels. A fifth of each lexicon appears only in dev, so the dev score shows
whether the model generalises to unseen entity names from context.

    python scripts/make_demo_corpus.py assets/demo
"""
import json
import random
import sys
from pathlib import Path

LEXICON = {
    "解剖部位": "肝脏 胆囊 胰腺 脾脏 左肾 右肾 胃窦 十二指肠 升结肠 直肠 乙状结肠 回盲部 腹部 胸部 双肺 左肺上叶 右肺下叶 纵隔 心脏 甲状腺 左侧乳腺 右侧乳腺 腋窝淋巴结 颈部 头颅 腰椎 左膝关节 右髋关节 膀胱 前列腺 子宫 卵巢 食管 贲门 盆腔 腹膜后 肝门部 胆总管 双下肢 上腹部 剑突下 左下腹 右上腹 肛门 肝左叶 肝右叶",
    "疾病和诊断": "直肠癌 结肠癌 胃癌 肝癌 肺癌 乳腺癌 甲状腺乳头状癌 高血压病 2型糖尿病 冠心病 慢性胃炎 胆囊结石 急性阑尾炎 肺部感染 贫血 脑梗死 慢性阻塞性肺疾病 肝硬化 慢性乙型病毒性肝炎 腰椎间盘突出症 急性胰腺炎 肾功能不全 低蛋白血症 淋巴结转移 骨质疏松症 心房颤动 心力衰竭 痛风 子宫肌瘤 卵巢囊肿 前列腺增生 食管癌 胆管癌 膀胱癌 鼻咽癌 肠梗阻 肝转移瘤 肺转移瘤",
    "药物": "阿司匹林 奥沙利铂 卡培他滨 替吉奥 氟尿嘧啶 紫杉醇 顺铂 多西他赛 伊立替康 贝伐珠单抗 二甲双胍 胰岛素 硝苯地平 阿托伐他汀 氯吡格雷 奥美拉唑 头孢曲松 左氧氟沙星 甲硝唑 地塞米松 泼尼松 呋塞米 螺内酯 华法林 低分子肝素 吗啡 布洛芬 对乙酰氨基酚 恩替卡韦 来曲唑 他莫昔芬 吉西他滨 培美曲塞 曲妥珠单抗 阿莫西林 亚叶酸钙 雷贝拉唑 美托洛尔",
    "实验室检验": "血常规 白细胞 血红蛋白 血小板 中性粒细胞 谷丙转氨酶 谷草转氨酶 总胆红素 白蛋白 肌酐 尿素氮 空腹血糖 糖化血红蛋白 CEA CA199 CA125 AFP 凝血酶原时间 D-二聚体 C反应蛋白 降钙素原 血钾 血钠 尿常规 大便隐血 肝功能 肾功能 甲状腺功能 血脂 甘油三酯 乳酸脱氢酶 铁蛋白 血沉 淀粉酶",
    "手术": "直肠癌根治术 腹腔镜下胆囊切除术 胃癌根治术 右半结肠切除术 左半结肠切除术 乳腺癌改良根治术 甲状腺全切术 肝部分切除术 胰十二指肠切除术 阑尾切除术 经尿道前列腺电切术 全子宫切除术 卵巢囊肿剥除术 冠状动脉支架植入术 食管癌根治术 肺叶切除术 膀胱部分切除术 腰椎间盘摘除术 髋关节置换术 膝关节置换术 回肠造口术 造口还纳术 胆总管探查术 脾切除术 直肠癌根治术（DIXON术） 乙状结肠切除术",
    "影像检查": "腹部CT 胸部CT 头颅MRI 盆腔MRI 腹部彩超 心脏彩超 胸片 肠镜 胃镜 PET-CT 骨扫描 甲状腺彩超 乳腺钼靶 腰椎MRI 上腹部增强CT 肝脏MRI 颈部彩超 泌尿系彩超 冠脉造影 超声内镜 全腹部增强CT 胸腹部CT",
}
SLOTS = {"BODY": "解剖部位", "DIS": "疾病和诊断", "DRUG": "药物", "LAB": "实验室检验", "OP": "手术", "IMG": "影像检查"}
TEMPLATES = [
    "患者因{DIS}于{DATE}在我院行{OP}，术后病理提示{DIS}。",
    "{IMG}示{BODY}多发占位，考虑{DIS}。",
    "术后予{DRUG}联合{DRUG}化疗{N}周期，过程顺利。",
    "复查{LAB}示{LAB}{NUM}，较前{TREND}。",
    "入院后完善{IMG}，提示{BODY}{FINDING}。",
    "既往有{DIS}病史{N}年，长期口服{DRUG}控制。",
    "查体：{BODY}压痛，{BODY}未触及肿大。",
    "患者{N}月前无明显诱因出现{BODY}疼痛，外院{IMG}提示{DIS}。",
    "予{DRUG}{DOSE}静脉滴注抗感染治疗。",
    "{LAB}：{NUM}，{LAB}：{NUM}。",
    "拟行{OP}，术前{LAB}未见明显异常。",
    "{DATE}行{IMG}检查：{BODY}未见明显异常。",
    "诊断为{DIS}，给予{DRUG}口服。",
    "术中见{BODY}与{BODY}粘连，遂行{OP}。",
    "为进一步诊治，门诊拟“{DIS}”收入我科。",
    "{OP}后规律复查{IMG}及{LAB}。",
    "患者出现{BODY}水肿，予{DRUG}利尿治疗。",
    "{IMG}提示{DIS}可能，建议结合{LAB}检查。",
    "{DATE}于外院行{OP}，术后恢复可。",
    "患者{N}天前出现{BODY}不适，伴恶心呕吐，自服{DRUG}后无缓解。",
    "行{IMG}：{BODY}见一大小约{NUM}cm肿物。",
    "查{LAB}升高，考虑{DIS}，予{DRUG}治疗。",
    "病理：（{BODY}）{DIS}。",
    "{DIS}术后{N}年，{IMG}示{DIS}。",
    "今日复查{LAB}、{LAB}，结果回报正常。",
    "停用{DRUG}，改用{DRUG}{DOSE}口服。",
]
FILLERS = ["患者精神可，饮食睡眠可，大小便正常。", "近期体重无明显变化。", "否认药物过敏史。", "家属要求出院，予办理。", "生命体征平稳，继续观察。"]
WORDS = {
    "DATE": ["2015年3月", "2017-06-12", "2018年", "1年前", "3月前", "2019-01-08", "半年前"],
    "N": ["2", "3", "4", "6", "10", "半"],
    "NUM": ["3.2", "125", "4.5", "12.8", "76", "0.9", "210"],
    "TREND": ["升高", "下降", "相仿"],
    "FINDING": ["低密度影", "结节", "增厚", "积液", "钙化灶"],
    "DOSE": ["0.5g", "100mg", "2g", "40mg", "5mg qd"],
}


def fill(template, rng, lexicon):
    text, entities = "", []
    rest = template
    while "{" in rest:
        before, _, after = rest.partition("{")
        slot, _, rest = after.partition("}")
        text += before
        if slot in SLOTS:
            label = SLOTS[slot]
            value = rng.choice(lexicon[label])
            entities.append([len(text), len(text) + len(value), label])
        else:
            value = rng.choice(WORDS[slot])
        text += value
    return text + rest, entities


def record(rng, lexicon):
    text, entities = "", []
    for _ in range(rng.choice([1, 1, 2, 2, 3])):
        part = rng.choice(FILLERS) if rng.random() < 0.12 else None
        if part is None:
            part, ents = fill(rng.choice(TEMPLATES), rng, lexicon)
            entities += [[s + len(text), e + len(text), l] for s, e, l in ents]
        text += part
    return {"text": text, "label": entities}


def main(out_dir: str) -> None:
    rng = random.Random(2019)
    train_lexicon, full_lexicon = {}, {}
    for label, words in LEXICON.items():
        words = words.split()
        held_out = set(rng.sample(words, len(words) // 5))
        train_lexicon[label] = [w for w in words if w not in held_out]
        full_lexicon[label] = words
    out = Path(out_dir)
    for name, n, lexicon in (("train", 320, train_lexicon), ("dev", 80, full_lexicon)):
        lines = [json.dumps(record(rng, lexicon), ensure_ascii=False) for _ in range(n)]
        (out / f"{name}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf8")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "assets/demo")
