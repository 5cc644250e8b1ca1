"""Knowledge questions for the realistic mix (``wechat_mix.py``): residents do not all ask the same
few sentences, and a question asked before is served from the knowledge base's cache, so a mix of a
few fixed questions never pays for a search. Each knowledge step draws from a pool instead.

A pool is 40 questions on different entries (written for this benchmark; none taken from the
evaluation sets or from real text), each said with one of 40 openings and endings (请问 …, … 呀):
1,600 distinct messages per step. The ``n``-th resident holding the knowledge conversation says
question ``n % 40`` with decoration ``n // 40``, so a run of up to 6,400 residents asks no message
twice. ``tests/ops/test_benchmark_mix.py`` checks the ones a 2,000-resident run asks: read as a
question by the intent engine and answered by their entry. Openings such as 你好， / 想咨询一下 / 那个
were left out: with them some questions go to small talk or a clarifying question, or are offered
choices (a finding about the engines, not what this benchmark measures).
"""

from __future__ import annotations

# (entry id, question, a word the reply must hold: from the entry's answer)
Question = tuple[str, str, str]

FIRST: tuple[Question, ...] = (
    ("proof-residence", "居住证明去哪开", "居住证明"),
    ("dibao-apply", "低保怎么申请要带什么材料", "户口本"),
    ("elderly-allowance", "高龄补贴多大岁数能领", "80周岁"),
    ("elderly-card", "老年证在哪办理", "优待证"),
    ("disability-card-apply", "残疾证怎么申请办理", "残联"),
    ("disability-card-renew", "残疾证过期了怎么换", "有效期"),
    ("unemployment-registration", "失业登记在哪做", "失业"),
    ("unemployment-benefit", "失业保险金怎么领取", "失业保险"),
    ("residence-permit-apply", "外地来的怎么办居住证", "居住证"),
    ("residence-permit-renew", "居住证到期了怎么续", "签注"),
    ("hukou-newborn", "新生儿上户口要带什么", "出生医学证明"),
    ("id-card", "身份证丢了去哪补", "派出所"),
    ("marriage-registration", "领结婚证去哪里办", "婚姻登记"),
    ("family-doctor", "家庭医生怎么签约", "家庭医生"),
    ("elderly-health-check", "65岁以上老人的免费体检在哪查", "体检"),
    ("vaccine-child", "小孩打疫苗去哪打", "接种"),
    ("vaccine-certificate", "孩子的接种证丢了怎么补", "补办"),
    ("vaccine-rabies", "狂犬疫苗去哪打", "狂犬"),
    ("hpv-vaccine", "HPV疫苗在哪预约", "HPV"),
    ("garbage-categories", "垃圾分类有哪几类", "可回收物"),
    ("garbage-hazardous", "废电池属于什么垃圾", "有害垃圾"),
    ("garbage-bulky", "旧床垫这种大件垃圾怎么处理", "大件垃圾"),
    ("garbage-renovation", "装修垃圾扔哪里", "装修垃圾"),
    ("medical-insurance-resident-pay", "城乡居民医保什么时候交", "医保"),
    ("medical-insurance-newborn", "新生儿医保怎么办", "新生儿"),
    ("medical-insurance-offsite", "异地就医怎么备案", "备案"),
    ("medical-insurance-e-voucher", "医保电子凭证怎么激活", "电子凭证"),
    ("social-security-card", "社保卡在哪办", "社保卡"),
    ("pension-retirement", "退休手续怎么办理", "退休"),
    ("social-security-records", "社保缴费记录怎么查", "缴费记录"),
    ("heating-fee", "暖气费在哪交", "供暖费"),
    ("heating-apply-stop", "房子没人住暖气能报停吗", "报停"),
    ("gas-payment", "燃气费怎么交", "燃气费"),
    ("party-member-report", "在职党员去社区报到怎么弄", "报到"),
    ("volunteer-register", "想当社区志愿者怎么注册", "志愿"),
    ("legal-aid", "社区有没有免费法律咨询", "法律"),
    ("neighbor-dispute", "跟邻居闹矛盾了社区能调解吗", "调解"),
    ("dog-registration", "养狗需要登记吗", "养犬"),
    ("proof-no-criminal-record", "无犯罪记录证明去哪开", "公安"),
    ("hukou-move-out", "户口迁出怎么办", "迁移"),
)

SECOND: tuple[Question, ...] = (
    ("proof-kinship", "亲属关系证明在哪开", "亲属关系"),
    ("proof-marital-status", "单身证明去哪开", "婚姻"),
    ("proof-alive-certification", "养老金生存认证怎么做", "认证"),
    ("proof-rental-registration", "房子租出去要去社区登记吗", "登记"),
    ("dibao-eligibility", "家里收入多少能申请低保", "低保"),
    ("dibao-payment", "低保金一般什么时候到账", "低保金"),
    ("temporary-assistance", "家里出了事有没有临时救助", "临时救助"),
    ("tekun-support", "没儿没女的老人能申请特困供养吗", "特困"),
    ("elderly-allowance-payment", "高龄补贴每个月几号到账", "发放"),
    ("elderly-card-benefits", "老年证有什么优惠", "优待"),
    ("elderly-card-replace", "老年证丢了怎么补", "补办"),
    ("elderly-meal-service", "老人助餐服务有吗", "助餐"),
    ("elderly-home-care", "居家养老服务怎么申请", "居家养老"),
    ("elderly-home-adaptation", "适老化改造怎么申请", "适老化"),
    ("disability-subsidies", "残疾人能领哪些补贴", "补贴"),
    ("disability-rehab-aids", "残疾人轮椅能免费申请吗", "轮椅"),
    ("job-training", "有没有免费的技能培训", "培训"),
    ("startup-loan", "创业担保贷款怎么申请", "贷款"),
    ("graduate-employment", "大学毕业没找到工作社区能帮忙吗", "毕业生"),
    ("birth-registration", "生育登记怎么办", "生育登记"),
    ("birth-subsidy", "生孩子有补贴吗", "生育"),
    ("only-child-reward", "独生子女奖励怎么领", "独生子女"),
    ("vaccine-adult", "老人打流感疫苗去哪", "流感"),
    ("hukou-move-in", "户口迁入大同要什么条件", "迁入"),
    ("hukou-split", "分户怎么办理", "分户"),
    ("hukou-info-change", "户口本信息写错了怎么改", "更正"),
    ("medical-insurance-chronic", "慢性病医保报销怎么申请", "慢特病"),
    ("pension-resident-enroll", "城乡居民养老保险怎么参保", "养老保险"),
    ("pension-flexible", "灵活就业社保怎么交", "灵活就业"),
    ("pension-transfer", "养老保险从外地转回来怎么办", "转移"),
    ("medical-assistance", "看病费用太高有医疗救助吗", "医疗救助"),
    ("heating-season", "今年几号开始供暖", "供暖"),
    ("heating-new-connection", "新房暖气开通怎么申请", "供暖"),
    ("gas-account", "燃气过户怎么办", "过户"),
    ("veteran-preferential-card", "退役军人优待证怎么办", "优待证"),
    ("veteran-honor-plaque", "光荣之家牌子在哪领", "光荣"),
    ("enlistment", "征兵报名在哪报", "征兵"),
    ("party-transfer", "党组织关系转到社区怎么转", "组织关系"),
    ("maintenance-fund", "维修基金怎么申请使用", "维修"),
    ("hoa-setup", "成立业委会需要什么手续", "业委会"),
)

THIRD: tuple[Question, ...] = (
    ("office-hours", "社区服务中心上班时间是几点", "工作日"),
    ("office-location", "社区服务中心在什么地方", "办事指南"),
    ("office-materials-general", "去社区办事一般带什么证件", "身份证"),
    ("office-grid-worker", "网格员平时都管哪些事", "网格"),
    ("office-home-service", "老人走不动社区能上门办吗", "上门"),
    ("office-online-services", "公众号上能办哪些事", "公众号"),
    ("proof-which-ones", "社区都能开什么证明", "证明"),
    ("proof-hardship", "学校要家庭困难证明去哪开", "学校"),
    ("party-fee", "党费怎么交", "党费"),
    ("party-join", "入党申请找社区可以吗", "入党"),
    ("ebike-parking", "电动车应该停哪里", "车棚"),
    ("ebike-charging-station-request", "小区没充电桩能申请装吗", "充电桩"),
    ("volunteer-hours-proof", "志愿服务时长在哪查", "时长"),
    ("gas-safety-check", "燃气公司上门安检要收钱吗", "安检"),
    ("heating-fee", "供暖费去哪交", "供暖费"),
    ("veteran-station", "退役军人服务站能办什么", "服务站"),
    ("veteran-employment", "退役军人就业有什么扶持", "退役军人"),
    ("veteran-pension-aid", "优抚对象抚恤补助怎么领", "优抚"),
    ("military-family", "当兵的家属有什么优待", "优待"),
    ("garbage-kitchen", "厨余垃圾包括哪些", "厨余"),
    ("garbage-recyclable", "旧衣服算可回收物吗", "可回收物"),
    ("garbage-collection-time", "小区垃圾什么时候收", "投放"),
    ("renovation-filing", "装修房子要去物业报备吗", "装修"),
    ("property-fee", "物业费收费标准是多少", "物业费"),
    ("property-change", "业主能换物业公司吗", "业主大会"),
    ("hoa-election", "业委会换届怎么选", "换届"),
    ("old-compound-no-property", "老小区没物业有事找谁", "老旧小区"),
    ("parking-dispute", "小区车位怎么分配", "车位"),
    ("ebike-license-plate", "电动车上牌去哪上", "交警"),
    ("ebike-charging-station", "小区集中充电桩怎么收费", "充电桩"),
    ("ebike-battery-safety", "电动车电池充电要注意什么", "电池"),
    ("children-after-school", "孩子放学后社区有托管吗", "四点半"),
    ("employment-difficulty", "就业困难人员怎么认定", "就业困难"),
    ("job-seeking", "社区有招聘信息吗", "招聘"),
    ("venue-booking", "社区活动室能借用吗", "活动室"),
    ("social-security-card", "社保卡怎么补办", "社保卡"),
    ("elderly-card", "老年人优待证怎么办理", "优待证"),
    ("proof-residence", "开居住证明要什么材料", "居住证明"),
    ("hukou-newborn", "新生儿落户要带什么", "出生医学证明"),
    ("medical-insurance-resident-pay", "居民医保怎么缴费", "医保"),
)

# How residents open and end a question (50 pairings).
OPENINGS = ("", "请问", "请问一下", "我想问问", "想问问", "打扰一下 请问", "您好，请问", "麻烦问下")
ENDINGS = ("", "啊", "呀", "呢", "？")

POOLS = {"first": FIRST, "second": SECOND, "third": THIRD}


def variants(pool: str) -> int:
    """How many distinct messages a pool gives."""
    return len(POOLS[pool]) * len(OPENINGS) * len(ENDINGS)


def question(pool: str, n: int) -> tuple[str, str, str]:
    """The ``n``-th resident's question of ``pool``: (message, expected entry id, a word its reply holds)."""
    questions = POOLS[pool]
    entry, core, word = questions[n % len(questions)]
    decoration = n // len(questions) % (len(OPENINGS) * len(ENDINGS))
    opening, ending = OPENINGS[decoration % len(OPENINGS)], ENDINGS[decoration // len(OPENINGS)]
    return f"{opening}{core}{ending}", entry, word
