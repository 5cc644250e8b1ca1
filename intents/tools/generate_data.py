"""Generate the intent training data (``intents/data/*.yml``) and the held-out split (``intents/data/test/``).

Run ``python -m intents.tools.generate_data`` from the repository root. The output is plain YAML that an
operator can read and edit by hand; this script only exists so that the variation (colloquial prefixes,
voice-style text without punctuation, homophone typos …) is produced reproducibly. Everything here was
written for this project: no external data set is copied.

Held-out split: hand-written seed sentences are split at random (fixed seed); templated sentences are
split by *template*, so the test files contain sentence frames the classifier never saw in training.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable
from pathlib import Path

import jieba
import yaml

DATA_DIR = Path(__file__).resolve().parents[1] / "data"
SEED = 20261122


def lines(block: str) -> list[str]:
    return [x.strip() for x in block.strip().splitlines() if x.strip() and not x.strip().startswith("#")]


# --------------------------------------------------------------------------------------------- lookups
COURSES = lines("""
花艺
插花
中医养生
中医
书法
软笔书法
硬笔书法
乐器
葫芦丝
古筝
二胡
电子琴
太极拳
太极
八段锦
合唱
声乐
国画
水彩画
摄影
手机摄影
智能手机使用
烘焙
广场舞
民族舞
瑜伽
英语口语
剪纸
编织
茶艺
象棋
围棋
朗诵
防诈骗讲座
急救培训
健康讲座
""")

ACTIVITIES = lines("""
义诊
免费体检
志愿者活动
志愿服务
社区义剪
亲子活动
读书会
垃圾分类宣传
敬老院慰问
便民服务日
老年人体检
眼科义诊
口腔义诊
""")

MERCHANTS = lines("""
社区超市
好邻居便利店
便民理发店
老王修鞋铺
阳光大药房
鲜丰水果店
干净洗衣店
张姐早餐铺
社区食堂
家政服务站
惠民菜市场
小李修车铺
""")

COUPONS = lines("""
满50减10券
理发券
洗衣八折券
早餐券
水果代金券
10元代金券
食堂餐券
家政服务券
修鞋券
药房满减券
停车券
""")

BUILDING_WORDS = lines("""
号楼
栋
幢
单元
楼道
地下车库
小区门口
东门
西门
南门
北门
物业办公室
""")

# Synonyms / homophones: variant -> canonical. Applied to every message before classification.
SYNONYMS: dict[str, list[str]] = {
    "积分": ["机分", "鸡分", "积份", "几分儿"],
    "报修": ["保修", "抱修"],
    "优惠券": ["优惠卷", "优惠劵", "优会券"],
    "兑换": ["对换", "兑还"],
    "物业": ["物叶", "屋业"],
    "投诉": ["头诉", "投宿"],
    "预约": ["遇约", "预越"],
    "报名": ["抱名", "报明"],
    "电梯": ["电题"],
    "工单": ["公单"],
    "居住证": ["居往证"],
    "转人工": ["转仁工", "转人公"],
}

# Which intent file lists each synonym group (all groups apply to every message).
SYNONYM_OWNER = {"积分": "coupon", "优惠券": "coupon", "兑换": "coupon", "预约": "course_booking",
                 "报名": "course_booking", "居住证": "query", "转人工": "handoff"}

# ------------------------------------------------------------------------------------------ shared slots
PLACES = lines("""
3号楼
5号楼
12栋
我们楼
我家楼下
我们小区
小区门口
2单元
楼道里
地下车库
东门
小区花园
菜市场旁边
健身器材那边
垃圾站
我们这栋楼
后面那排楼
7栋2单元
幸福里小区
阳光花园
""")

PREFIXES = ["", "", "", "", "你好，", "您好，", "请问", "麻烦问下", "喂，", "那个，", "我想问一下，", "嗯，",
            "哎，", "老师，", "同志你好，", "小助手，", "在吗，", "打扰一下，"]
SUFFIXES = ["", "", "", "", "。", "？", "！", "，谢谢", "，谢谢啦", "啊", "呢", "吧", "哈", "，急！", "，麻烦了",
            "，辛苦了"]

TYPOS: list[tuple[str, list[str]]] = [
    ("积分", ["机分", "鸡分", "积份"]),
    ("报修", ["保修"]),
    ("什么", ["啥", "神马", "什么呀"]),
    ("怎么", ["咋", "怎样", "怎么样"]),
    ("时候", ["时后"]),
    ("一下", ["一哈", "一下子"]),
    ("我", ["俺"]),
    ("优惠券", ["优惠卷"]),
    ("兑换", ["对换"]),
    ("电梯", ["电题"]),
    ("物业", ["物叶"]),
    ("预约", ["预定"]),
    ("报名", ["抱名"]),
    ("哪里", ["哪儿", "哪"]),
    ("没有", ["没", "木有"]),
    ("知道", ["晓得"]),
    ("吗", ["嘛", "么"]),
]

PUNCT_RE = re.compile(r"[，。？！、,.?!；;：:\s]")


def noisy(text: str, rng: random.Random) -> str:
    """One colloquial / voice / typo variant of ``text``."""
    r = rng.random()
    if r < 0.25:
        text = rng.choice(PREFIXES) + text
    elif r < 0.4:
        text = text + rng.choice(SUFFIXES)
    if rng.random() < 0.35:
        for word, variants in TYPOS:
            if word in text and rng.random() < 0.5:
                text = text.replace(word, rng.choice(variants), 1)
                break
    if rng.random() < 0.3:  # voice recognition: no punctuation at all
        text = PUNCT_RE.sub("", text)
    return text


def expand(template: str, slots: dict[str, list[str]], rng: random.Random, n: int) -> list[str]:
    """Up to ``n`` distinct fillings of ``{slot}`` placeholders."""
    names = re.findall(r"\{(\w+)\}", template)
    out: set[str] = set()
    for _ in range(n * 4):
        text = template
        for name in names:
            text = text.replace("{" + name + "}", rng.choice(slots[name]), 1)
        out.add(text)
        if len(out) >= n:
            break
    return sorted(out)


# ------------------------------------------------------------------------------------------- complaint
COMPLAINT_SEEDS = lines("""
楼道灯坏了好几天了
我家厨房漏水了，楼上渗下来的
电梯又坏了，老人上不去楼
小区路灯不亮了，晚上黑乎乎的很危险
下水道堵了，污水都冒出来了
为啥路灯一直不修？
为什么我们楼的电梯老是坏
楼上天天半夜装修，吵得睡不着
广场舞音响太大声了，每天晚上吵到十点
有人在楼道里飞线充电，太危险了
楼道里有很重的燃气味，赶紧派人来看看
小区垃圾好几天没人清了，臭死了
消防通道被车堵死了
楼下有人占道经营，路都走不了
隔壁养的狗天天叫，没法休息
楼上往下扔垃圾，砸到我家阳台
物业服务太差了，我要投诉
物业费交了啥事都不管
保安态度很差，骂人
暖气不热，家里才十五度
停水了也不通知一声
小区门禁坏了，谁都能进来
井盖丢了，有小孩掉下去就麻烦了
绿化带被人种菜了
有人在小区里私搭乱建
楼顶被人加盖了一间房
我上次报的漏水修了没有
帮我催一下，我报的问题一个星期了还没人来
我的工单怎么还没处理
我要评价一下上次的维修，师傅很负责
给个差评，修完还是漏
问题没解决，要求重新处理
上次那个事情能不能重办一下
投诉的事情有进展了吗
我反映的噪音问题处理得怎么样了
能不能在小区门口装个减速带，车开得太快了
建议在健身器材那边加几盏灯，晚上太黑
水管爆了，水流了一地
家里停电了，整栋楼都没电
单元门关不上了
电动车在楼道里充电，没人管吗
垃圾分类桶都满了溢出来了
小区里有流浪狗咬人
楼下烧烤摊油烟太大，窗户都不敢开
外墙瓷砖掉下来了，差点砸到人
地下车库积水了
屋顶漏雨，家里墙都发霉了
化粪池满了，味道很大
邻居把鞋柜放在楼道里，堵着过不去
对面楼有人在阳台上养鸽子，到处是鸽子屎
小区里有僵尸车停了半年了
充电桩坏了一个月了都没修
路面坑坑洼洼的，老人容易摔倒
树枝快压到电线上了
有棵树倒了挡住路了
楼道墙皮脱落
门口的快递柜占了消防通道
晚上有人在小区里飙车
隔壁装修把我家墙打裂了
物业乱收费
停车费涨价也不公示
小区的监控坏了，车被划了也查不到
垃圾站太靠近我们楼了，夏天臭得不行
自来水发黄，不敢喝
燃气管道好像有点漏
电梯里困人了快来人
路灯一直不修到底有没有人管
我家楼上漏水找物业也不管咋办
俺们楼的下水道又堵了
这都第三次报修了还没修好
工单GD20261122-0042到底啥时候处理
我要投诉网格员，打电话一直不接
我上周反映的问题怎么没人回复
能帮我查一下我报的事办到哪一步了
维修师傅说好今天来结果没来
请尽快派人处理我们楼的漏水问题
麻烦物业管管楼上的噪音
为啥垃圾车每天早上五点就来收垃圾
我们楼的楼道灯是声控的，喊破喉咙都不亮
窨井盖响得很，车一过就咣当咣当的
公共厕所太脏了
有人遛狗不牵绳
小区里的健身器材坏了
儿童游乐设施生锈了很危险
楼道里堆满了杂物
有人在绿地上乱停车
大半夜的还在施工
外卖电动车在小区里乱窜
门口的路被挖开一个月了还没填
排水沟堵住了下雨就淹
空调外机滴水滴到我家窗台
邻居家的空调外机对着我家窗户
我要举报有人在楼顶搭建违章建筑
我觉得维修很满意，给个好评
上次修的电梯又坏了，要求重新处理
""")

COMPLAINT_SLOTS: dict[str, list[str]] = {
    "place": PLACES,
    "broken": lines("""
    路灯
    楼道灯
    电梯
    单元门
    门禁
    监控
    充电桩
    健身器材
    水管
    下水道
    井盖
    垃圾桶
    消防栓
    自来水管
    窗户
    对讲机
    防盗门
    路面
    围墙
    雨棚
    """),
    "state": lines("""
    坏了
    不亮了
    又坏了
    坏了好几天了
    老是出故障
    一直没人修
    不能用了
    有问题
    烂了
    漏水
    堵了
    """),
    "urge": lines("""
    赶紧派人来修一下
    麻烦尽快处理
    请物业来看看
    怎么还没人管
    都报了好几次了
    到底有没有人管
    能不能快点
    希望尽快解决
    """),
    "noise": lines("""
    楼上装修
    广场舞
    楼下烧烤摊
    隔壁的狗
    半夜施工
    楼上小孩跑跳
    早上五点的垃圾车
    KTV
    酒吧
    邻居打麻将
    """),
    "nuisance": lines("""
    太吵了
    吵得睡不着
    天天扰民
    噪音太大
    一直响到半夜
    """),
    "env": lines("""
    垃圾没人清
    污水横流
    臭味很大
    到处是狗屎
    有很多老鼠
    蚊子特别多
    堆满了建筑垃圾
    有人乱倒垃圾
    """),
    "target": lines("""
    物业
    物业公司
    保安
    保洁
    网格员
    维修师傅
    楼上邻居
    隔壁邻居
    停车场管理员
    居委会
    """),
    "hazard": lines("""
    有人飞线充电
    电动车在楼道充电
    有燃气味
    电线裸露在外面
    消防通道被堵了
    灭火器过期了
    楼道堆满了纸箱
    外墙有东西要掉下来
    """),
    "park": lines("""
    有人乱停车
    车停在消防通道上
    车位被别人占了
    有僵尸车
    电动车乱停
    外来车辆随便进出
    """),
    "followup": lines("""
    我上次报的事修了没
    我的工单进度怎么样了
    我反映的问题处理得怎么样了
    我报修的东西什么时候来修
    上次投诉的结果呢
    我提交的问题有人管吗
    帮我催一下工单
    我的报修到哪一步了
    """),
    "ticket": ["GD20261122-0042", "GD20261103-0007", "GD20261015-0130", "GD20260930-0021"],
    "rate": lines("""
    我要给上次的维修打分
    评价一下维修服务
    对处理结果不满意
    对处理结果很满意
    给个好评
    给个差评
    """),
    "fixwish": lines("""
    装个路灯
    加个减速带
    修一下路面
    装个监控
    多放几个垃圾桶
    建个充电桩
    安个扶手
    修个无障碍坡道
    """),
}

NAME_PARTS = list("金华锦绣阳光幸福和平新景东方翠湖碧桂龙城博雅书香南山北岸滨江天悦紫荆荷塘凤凰")
PLACE_KINDS = ["小区", "花园", "家园", "苑", "新村", "路", "街", "公寓", "大厦", "社区", "城"]


def synthetic_places(rng: random.Random, n: int) -> list[str]:
    """Invented place names (锦绣花园, 凤凰路 …) so that unknown names are not a sign of `fallback`."""
    out: set[str] = set()
    while len(out) < n:
        out.add("".join(rng.sample(NAME_PARTS, 2)) + rng.choice(PLACE_KINDS))
    return sorted(out)


COMPLAINT_SLOTS["anyplace"] = synthetic_places(random.Random(7), 60)
COMPLAINT_SLOTS["formal_issue"] = lines("""
电梯故障频发
路灯长期不亮
违规收费
物业不作为
开发商迟迟不办房产证
道路破损严重
垃圾长期无人清运
污水直排
噪音严重扰民
违章搭建严重
停车收费混乱
供暖不达标
二次供水水质差
小区环境脏乱差
消防设施缺失
化粪池外溢
绿化带被毁
施工扬尘严重
拖欠维修基金
物业擅自涨价
""")
COMPLAINT_SLOTS["formal_ask"] = lines("""
恳请有关部门处理
请求尽快解决
希望领导重视
要求整改
请社区协调解决
望相关部门督促整改
强烈要求处理
请给个说法
""")

COMPLAINT_TEMPLATES = [
    "{anyplace}{formal_issue}",
    "{anyplace}{formal_issue}，{formal_ask}",
    "反映{anyplace}{formal_issue}的问题",
    "关于{anyplace}{formal_issue}的投诉",
    "{formal_issue}，{formal_ask}",
    "投诉{anyplace}{formal_issue}",
    "{anyplace}的{broken}{state}",
    "{anyplace}{noise}{nuisance}",
    "{anyplace}{hazard}",
    "{anyplace}{park}",
    "{place}的{broken}{state}",
    "{place}{broken}{state}，{urge}",
    "{broken}{state}，{urge}",
    "为啥{place}的{broken}一直没人修",
    "为什么{broken}{state}也没人管",
    "{broken}{state}咋办",
    "我要报修，{place}的{broken}{state}",
    "报修{place}{broken}",
    "{noise}{nuisance}",
    "{noise}{nuisance}，{urge}",
    "{place}{noise}{nuisance}",
    "{place}{env}",
    "{place}{env}，{urge}",
    "我要投诉{target}",
    "投诉一下{target}，态度太差了",
    "{target}不作为，我要投诉",
    "{target}怎么不管管",
    "{place}{hazard}",
    "{place}{hazard}，太危险了",
    "{hazard}谁来管管",
    "{place}{park}",
    "{park}，{urge}",
    "{followup}",
    "{followup}，{urge}",
    "工单{ticket}进度怎么样",
    "我的工单{ticket}还没处理吗",
    "{ticket}这个单子帮我催一下",
    "{rate}",
    "工单{ticket}{rate}",
    "建议在{place}{fixwish}",
    "能不能在{place}{fixwish}",
    "希望社区在{place}{fixwish}",
    "{place}{broken}{state}，上次报了也没用，要求重新处理",
    "俺家{broken}{state}",
    "咋回事啊{place}的{broken}又{state}",
    "{place}的{broken}啥时候能修好",
]

# ---------------------------------------------------------------------------------------------- coupon
COUPON_SEEDS = lines("""
我有多少积分
查一下我的积分
积分怎么赚
怎么才能获得积分
积分能换什么东西
积分商城在哪里
我想用积分兑换优惠券
积分兑换的券怎么用
我的优惠券在哪看
我兑换的券到哪里去了
理发券在哪家店能用
社区超市的券还有吗
早餐券怎么领取
积分可以换鸡蛋吗
参加志愿活动能加多少积分
积分会过期吗
积分什么时候清零
这个月我的积分怎么少了
积分明细在哪查
我的券过期了还能用吗
兑换了券怎么核销
到店里出示什么才能用券
积分不够怎么办
积分能转给家里人吗
能用积分抵现金吗
积分商城有什么好东西
有哪些商家可以用积分
机分怎么查
我的鸡分有多少
俺的积分咋还是零
积分兑换规则是啥
一个积分等于多少钱
我签到了积分为什么没加
垃圾分类积分怎么算
积分换的洗衣券在哪个店用
用积分换个水果代金券
我要换一张理发券
帮我兑换早餐券
兑换优惠券失败了
券码在哪里看
优惠卷怎么用
我领的代金券能不能退
积分排行榜在哪看
积分兑换记录
上个月的积分到账了吗
积分商城的东西多久更新
怎么用积分换米和油
志愿服务时长能换积分吗
积分可以换停车券吗
""")

COUPON_SLOTS: dict[str, list[str]] = {
    "merchant": MERCHANTS,
    "coupon": COUPONS,
    "pts": lines("""
    积分
    机分
    积份
    我的积分
    社区积分
    志愿积分
    """),
    "ptsq": lines("""
    还剩多少
    有多少
    怎么查
    在哪里看
    怎么算的
    怎么没到账
    能干嘛
    能换啥
    怎么用
    会不会过期
    怎么攒
    怎么赚
    """),
    "couponq": lines("""
    怎么用
    在哪里领
    还有没有
    什么时候过期
    能不能用
    要多少积分
    怎么兑换
    在哪看
    用不了
    """),
    "earn": lines("""
    参加志愿活动
    垃圾分类
    每天签到
    参加夜校上课
    随手拍反映问题
    参加义务巡逻
    """),
}

COUPON_TEMPLATES = [
    "{pts}{ptsq}",
    "我的{pts}{ptsq}",
    "请问{pts}{ptsq}",
    "{coupon}{couponq}",
    "{merchant}的{coupon}{couponq}",
    "{merchant}能用积分吗",
    "{merchant}可以用{coupon}吗",
    "在{merchant}怎么用券",
    "我想在积分商城换{coupon}",
    "用积分兑换{coupon}",
    "帮我换一张{coupon}",
    "{coupon}要多少积分",
    "{earn}能得多少积分",
    "{earn}有积分吗",
    "{earn}的积分怎么还没加",
    "积分商城里{merchant}的券",
    "我兑换的{coupon}在哪",
    "我的券包里有{coupon}吗",
    "{merchant}的优惠券还能换吗",
    "{coupon}过期了咋办",
    "积分能在{merchant}抵钱吗",
    "积分够不够换{coupon}",
    "去{merchant}消费能用积分吗",
    "俺想拿积分换{coupon}",
    "积分商城有没有{merchant}的券",
]

# ---------------------------------------------------------------------------------------------- course
COURSE_SEEDS = lines("""
夜校有哪些课
群众夜校这学期开什么课
我想报名书法课
花艺课还有名额吗
中医课几点上课
太极拳在哪里上课
帮我预约周六的合唱课
我要取消明天的课
我报了哪些课
查一下我的预约
义诊怎么预约
下周的义诊还有号吗
志愿者活动怎么报名
这周有什么活动
乐器课要交钱吗
上课要花积分吗
课程表发我看看
老年人可以报名吗
小孩能参加书法课吗
我想学画画有课吗
有没有教用智能手机的课
报了名去不了怎么办
我的预约能改时间吗
还有多少个名额
夜校在哪里上课
下次太极拳课什么时候
我想给我妈报个合唱班
一个人能报几门课
课程满了还能候补吗
报名成功了吗
能帮我退掉花艺课吗
免费体检在哪天
义诊需要带身份证吗
眼科义诊还能约吗
这个月的志愿服务活动有哪些
周末有亲子活动吗
读书会几点开始
我要报名社区义剪
葫芦丝班开了吗
古筝课老师是谁
烘焙课需要自己带材料吗
瑜伽课在几楼
舞蹈班晚上几点
报名英语口语课
下周三上午的中医养生课我要预约
俺想学太极咋报名
啥时候有书法课
二胡课报满了吗
健康讲座在哪里听
防诈骗讲座还能报名吗
我预约的义诊是几点
帮我看看我约了啥
取消我的志愿者报名
这个课上几次
学费多少
""")

COURSE_SLOTS: dict[str, list[str]] = {
    "course": COURSES,
    "act": ACTIVITIES,
    "when": lines("""
    明天
    后天
    周六
    周日
    这周末
    下周三
    下周
    明天下午
    周六上午
    今天晚上
    11月25日
    下个月
    """),
    "courseq": lines("""
    几点上课
    在哪里上
    还有名额吗
    怎么报名
    要多少积分
    收费吗
    什么时候开课
    谁来教
    满了没有
    上几节课
    适合老年人吗
    要带什么
    """),
    "actq": lines("""
    怎么预约
    还有号吗
    在哪里
    几点开始
    怎么报名
    还能报吗
    需要带什么
    限多少人
    """),
    "book": lines("""
    我要报名
    帮我预约
    我想报
    给我报个名
    想约一下
    报一个
    """),
    "cancel": lines("""
    取消
    退掉
    不去了，帮我取消
    改个时间
    """),
    "course_kind": ["课", "班", "课程", "培训"],
}

COURSE_TEMPLATES = [
    "{course}{courseq}",
    "{course}{course_kind}{courseq}",
    "{when}的{course}{course_kind}{courseq}",
    "{book}{course}{course_kind}",
    "{book}{when}的{course}{course_kind}",
    "{book}{act}",
    "{act}{actq}",
    "{when}的{act}{actq}",
    "{cancel}{when}的{course}{course_kind}",
    "{cancel}我的{act}预约",
    "我报的{course}{course_kind}是{when}吗",
    "{when}有{course}{course_kind}吗",
    "{when}有没有{act}",
    "夜校有{course}{course_kind}吗",
    "想学{course}，社区有课吗",
    "我约的{act}是几点",
    "俺想学{course}咋报名",
    "{course}{course_kind}还剩几个名额",
    "{course}{course_kind}报名要花积分吗",
    "我的{course}{course_kind}预约",
    "有没有{course}的{course_kind}",
    "给老伴报个{course}{course_kind}",
    "群众夜校{course}{course_kind}{courseq}",
    "{act}啥时候",
]

# ----------------------------------------------------------------------------------------------- query
QUERY_SEEDS = lines("""
开居住证明需要带什么材料
社保怎么交
医保卡丢了怎么补办
高龄补贴怎么申请
居住证在哪里办
社区服务中心几点上班
周末居委会开门吗
低保需要什么条件
残疾证怎么办理
老年证去哪办
新生儿怎么上户口
生育登记需要什么材料
办事大厅在哪里
养老保险交多少年能领
失业金怎么领
公租房怎么申请
小孩上学要开什么证明
养狗要办证吗
电动车上牌去哪里
装修要不要去物业备案
垃圾分类有什么规定
党员组织关系怎么转
独生子女证丢了能补吗
医保报销比例是多少
城乡居民医保今年交多少钱
灵活就业社保怎么交
退休手续怎么办
居委会电话是多少
社区医院在哪
开无犯罪证明去哪开
临时救助怎么申请
廉租房排队要多久
孩子打疫苗在哪里
计生证明怎么开
租房要登记吗
外地人在这里能办居住证吗
老人去世了要办哪些手续
办理死亡证明需要什么
老年人免费乘车卡怎么办
困难家庭有什么补助
退役军人有什么优待政策
社区有没有法律援助
邮寄办理可以吗
能不能网上办
办证要本人去吗
代办需要什么手续
周六能办业务吗
中午休息吗
午休几点到几点
社区书记叫什么名字
咱们社区的网格员是谁
啥时候能领高龄补贴
俺想问问低保咋申请
物业费的收费标准是啥
停车位怎么申请
小区有没有老年食堂
老年食堂在哪里吃饭
充电桩在哪里
哪里可以交水电费
燃气费在哪交
暖气费什么时候交
身份证快到期了在哪换
户口本丢了怎么办
结婚登记去哪里
""")

QUERY_SLOTS: dict[str, list[str]] = {
    "item": lines("""
    居住证明
    居住证
    社保
    医保
    高龄补贴
    低保
    残疾证
    老年证
    老年卡
    独生子女证
    生育登记
    户口迁移
    养老保险
    失业登记
    就业登记
    公租房
    廉租房
    无犯罪证明
    入学证明
    犬证
    临时救助
    计生证明
    死亡证明
    医疗救助
    退休认证
    养老金资格认证
    电动车上牌
    装修备案
    流动人口登记
    新生儿医保
    """),
    "qq": lines("""
    怎么办理
    怎么办
    需要带什么材料
    在哪里办
    去哪办
    要什么条件
    流程是啥
    多久能办好
    能网上办吗
    要不要本人去
    要交钱吗
    找谁办
    需要哪些证件
    有什么规定
    怎么申请
    """),
    "office": lines("""
    社区服务中心
    居委会
    党群服务中心
    社区卫生服务站
    办事大厅
    便民服务站
    网格员办公室
    社区医院
    """),
    "officeq": lines("""
    几点上班
    几点下班
    周末开门吗
    在哪里
    电话多少
    中午休息吗
    节假日上班吗
    怎么走
    """),
    "policy": lines("""
    养老金
    医保报销
    高龄补贴
    低保标准
    生育津贴
    残疾人补贴
    垃圾分类
    养犬管理
    租房登记
    物业收费
    """),
    "policyq": lines("""
    今年有什么新政策
    标准是多少
    怎么规定的
    有啥变化
    是怎么算的
    """),
}

QUERY_SLOTS["anyplace"] = synthetic_places(random.Random(8), 40)
QUERY_TEMPLATES = [
    "咨询{item}的办理流程",
    "关于{policy}的政策咨询",
    "{anyplace}的居民{item}{qq}",
    "{anyplace}附近哪里能办{item}",
    "{item}{qq}",
    "请问{item}{qq}",
    "我想办{item}，{qq}",
    "办{item}{qq}",
    "俺想问问{item}咋办",
    "{item}的手续{qq}",
    "帮老人办{item}{qq}",
    "{office}{officeq}",
    "咱们{office}{officeq}",
    "{office}的地址是哪里",
    "{policy}{policyq}",
    "关于{policy}的政策",
    "{policy}的规定是啥",
    "在社区能办{item}吗",
    "{item}可以在{office}办吗",
    "{item}去{office}办要带啥",
    "办{item}需要户口本吗",
    "{item}多少钱",
    "{item}啥时候能办",
    "我家老人能办{item}吗",
    "外地户口能办{item}吗",
]

# ------------------------------------------------------------------------------------------- smalltalk
SMALLTALK_SEEDS = lines("""
你好
您好
早上好
中午好
晚上好
下午好
在吗
在不在
有人吗
谢谢
谢谢你
太感谢了
多谢
辛苦了
好的
好的知道了
明白了
行
嗯嗯
哈哈哈
再见
拜拜
晚安
你是谁
你是机器人吗
你叫什么名字
你几岁了
你真聪明
你好厉害
你好笨啊
你能干什么
你会做什么
你是男的还是女的
我今天心情不好
好无聊啊
陪我聊聊天
吃饭了吗
你吃饭了吗
你喜欢什么
你开心吗
新年快乐
中秋快乐
节日快乐
祝你工作顺利
你们辛苦了
点个赞
不错不错
没事了
不用了
打扰了
好的谢谢
收到
ok
hi
hello
哈喽
嗨
早
早安
你好呀小助手
小助手你好
你是真人吗
你是人工智能吗
你怎么这么聪明
我喜欢你
你好可爱
我好想你
你有男朋友吗
你累不累
跟你说话真开心
你说话好温柔
今天天真冷啊
我退休了没事干
老了记性不好
我孙子今天考试
谢谢你们社区
社区工作人员真好
给你们点赞
你们服务真周到
麻烦你了
不好意思
对不起
没关系
好嘞
得嘞
中
俺知道了
妥了
中午吃的饺子
你懂我吗
我是新搬来的
大家好
你今天忙不忙
你会唱歌吗
你会讲故事吗
你几点下班
你休息吗
""")

SMALLTALK_SLOTS = {
    "greet": ["你好", "您好", "早上好", "晚上好", "下午好", "哈喽", "嗨", "在吗"],
    "name": ["小助手", "小区助手", "机器人", "小社", "同志", "老师", "亲"],
    "thanks": ["谢谢", "谢谢你", "太感谢了", "多谢", "感谢", "谢啦", "辛苦了", "麻烦你了"],
    "tail": ["", "啊", "呀", "哈", "！", "~", "。", "哦"],
}
SMALLTALK_TEMPLATES = [
    "{greet}{name}{tail}",
    "{name}{greet}{tail}",
    "{thanks}{name}{tail}",
    "好的{thanks}{tail}",
    "{thanks}{thanks}",
    "{name}你是谁{tail}",
    "{name}你好聪明{tail}",
    "{name}你吃了吗",
]

# --------------------------------------------------------------------------------------------- handoff
HANDOFF_SEEDS = lines("""
转人工
人工
人工客服
找人工
我要人工服务
我要找真人
让真人跟我说
找工作人员
我要和工作人员说话
叫你们领导来
找你们负责人
能不能让网格员给我打电话
叫网格员联系我
我不想跟机器人说话
你听不懂，换个人
换个真人来
有没有人工
人工服务在哪
怎么转人工
客服电话是多少我要打人工
让社区书记联系我
找居委会的人
我要跟主任说
请工作人员回复我
帮我联系一下物业的人
机器人说不清楚，找个人来
人呢，有没有活人
我要当面说
能不能让人打个电话给我
转接一下人工
我要投诉也要找真人
我说的你不懂，找人
俺要找个人说说
喊个人来
联系客服
接人工
呼叫人工
转人工客服
人工人工人工
找值班人员
工作人员在吗
能找个真人聊吗
我要找社工
麻烦安排人联系我
让管事的人来
""")

HANDOFF_SLOTS = {
    "ask": ["我要", "我想", "帮我", "麻烦", "请", "快", "给我", "能不能", "俺要"],
    "act": ["转人工", "找人工", "找真人", "找工作人员", "转接人工客服", "联系网格员", "找个人工客服",
            "找个真人", "转人工服务", "找社区工作人员", "找值班的人", "联系居委会的人"],
    "tail": ["", "吧", "。", "！", "，机器人听不懂", "，你说不明白", "，急", "，谢谢"],
}
HANDOFF_TEMPLATES = ["{ask}{act}{tail}", "{act}{tail}", "{ask}{act}"]

# -------------------------------------------------------------------------------------------- fallback
FALLBACK_SEEDS = lines("""
今天天气怎么样
明天会下雨吗
北京这周天气
出门要不要带伞
放一首周杰伦的歌
来点轻音乐
播放新闻联播
给我讲个笑话
背一首李白的诗
床前明月光下一句是什么
帮我订一张去上海的机票
明天去广州的高铁票还有吗
查一下K字头的火车
从郑州到西安的动车几点
茅台股票今天涨了吗
大盘现在多少点
红烧肉怎么做
鱼香肉丝的做法
翻译一下我爱你
苹果用英语怎么说
一加一等于几
三百六十五乘以十二等于多少
湖南卫视在放什么
今晚有什么电视剧
打开微信
打开支付宝
下载抖音
双色球开奖号码
大乐透上期中奖号码
导航到火车站
附近有没有加油站
离我最近的银行
今天有什么新闻
国足比赛比分
湖人打得怎么样
世界杯什么时候开始
给我妈打电话
发短信给老张
明天早上七点叫我起床
设个闹钟
提醒我下午三点开会
现在几点了
今天几号
今天农历多少
距离过年还有几天
播放郭德纲的相声
讲个故事
推荐一部电影
附近的电影院
最近有什么好看的小说
打开收音机
听交通广播
发个邮件
查一下快递
我的手机号是多少
帮我算一下房贷
比特币价格
美元汇率
百度一下
打开淘宝
看看微博热搜
猜个谜语
成语接龙
周星驰的电影
感冒了吃什么药
头疼怎么办
高血压吃什么好
减肥有什么好方法
长沙有什么好玩的
去三亚旅游攻略
酒店怎么订
附近有什么好吃的
快递几点到
把音量调大一点
关掉蓝牙
打开手电筒
拍张照片
打个车去机场
地铁几号线到火车站
公交一路车几点停运
月亮离地球多远
恐龙为什么灭绝
asdfgh
嗯啊哦
123456
？？？
。。。
…
啊啊啊
哦哦哦哦
xxx
测试
aaa
哈哈哈哈哈哈哈哈哈哈哈哈
""")

FALLBACK_SLOTS: dict[str, list[str]] = {
    "city": lines("""
    北京
    上海
    广州
    深圳
    成都
    武汉
    西安
    杭州
    南京
    重庆
    郑州
    长沙
    哈尔滨
    合肥
    济南
    昆明
    """),
    "wday": ["今天", "明天", "后天", "这周末", "下周", "周六", "今晚"],
    "weatherq": lines("""
    天气怎么样
    会下雨吗
    气温多少度
    冷不冷
    有雾霾吗
    适合出门吗
    刮大风吗
    会下雪吗
    天气预报
    紫外线强吗
    """),
    "singer": lines("""
    周杰伦
    邓丽君
    刘德华
    王菲
    林俊杰
    陈奕迅
    凤凰传奇
    蔡琴
    张学友
    李宇春
    """),
    "song": lines("""
    小苹果
    月亮代表我的心
    青花瓷
    最炫民族风
    忘情水
    后来
    成都
    甜蜜蜜
    """),
    "play": ["播放", "放一首", "我想听", "来一首", "给我唱", "点播", "听一下"],
    "dish": lines("""
    红烧肉
    宫保鸡丁
    糖醋排骨
    西红柿炒鸡蛋
    可乐鸡翅
    饺子
    麻婆豆腐
    水煮鱼
    蛋炒饭
    酸菜鱼
    鱼香肉丝
    炸酱面
    """),
    "dishq": ["怎么做", "的做法", "怎么做好吃", "要放什么调料", "的家常做法", "需要炖多久"],
    "stock": ["茅台", "腾讯", "阿里巴巴", "中国平安", "格力电器", "比亚迪", "上证指数", "创业板", "宁德时代"],
    "stockq": ["股价多少", "今天涨了吗", "行情怎么样", "现在多少钱一股", "跌了多少", "能不能买", "走势"],
    "word": ["谢谢", "苹果", "早上好", "你好吗", "我爱你", "今天天气很好", "再见", "电脑", "书包", "医生"],
    "lang": ["英语", "日语", "韩语", "法语", "德语", "俄语"],
    "num": ["3", "15", "27", "128", "二十", "七", "一百", "365", "9"],
    "op": ["加", "减", "乘以", "除以"],
    "tv": ["中央一套", "湖南卫视", "浙江卫视", "CCTV5", "东方卫视", "江苏卫视", "北京卫视"],
    "tvq": ["在放什么", "今晚有什么节目", "几点播新闻", "节目单", "现在演什么"],
    "app": ["微信", "支付宝", "抖音", "淘宝", "高德地图", "QQ音乐", "快手", "拼多多", "美团", "计算器",
            "相机", "京东", "百度地图", "今日头条"],
    "appv": ["打开", "下载", "关闭", "卸载", "启动", "帮我打开", "安装"],
    "poet": ["李白", "杜甫", "白居易", "苏轼", "王维", "李清照"],
    "poemq": ["的诗", "的静夜思", "写的诗背一首", "的名句", "的代表作"],
    "dest": ["火车站", "机场", "人民医院", "市政府", "万达广场", "动物园", "高铁站", "天安门", "西湖",
             "最近的加油站", "体育中心"],
    "navq": ["怎么走", "导航去", "离这多远", "坐几路车", "开车要多久", "在哪里"],
    "team": ["国足", "皇马", "湖人", "恒大", "巴萨", "中国女排", "勇士", "曼联"],
    "matchq": ["比赛结果", "几点比赛", "比分多少", "赢了没有", "赛程", "最近战绩"],
    "person": ["老张", "王姐", "我儿子", "我老婆", "李明", "小王", "妈妈", "张经理", "刘老师"],
    "phoneact": ["打电话给", "呼叫", "给{person}发短信", "发微信给", "拨打", "视频通话给"],
    "lotto": ["双色球", "大乐透", "福彩3D", "排列三", "七星彩"],
    "lottoq": ["开奖结果", "上期号码", "今晚开奖吗", "中奖号码", "预测"],
    "movie": ["流浪地球", "战狼", "复仇者联盟", "哪吒", "你好李焕英", "甄嬛传", "西游记", "琅琊榜"],
    "movieq": ["在哪看", "好看吗", "播放", "第几集了", "谁演的", "什么时候上映"],
    "flight": ["机票", "航班", "飞机票", "特价机票"],
    "train": ["火车票", "高铁票", "动车票", "卧铺票"],
    "illness": ["感冒", "发烧", "咳嗽", "失眠", "胃疼", "颈椎病", "腰疼", "牙疼", "糖尿病", "过敏"],
    "illq": ["吃什么药", "怎么治", "怎么办", "能吃什么", "怎么调理", "是什么原因"],
    "topic": ["娱乐", "体育", "财经", "国际", "科技", "军事", "本地"],
    "novel": ["斗破苍穹", "三体", "鬼吹灯", "红楼梦", "盗墓笔记", "平凡的世界"],
    "radio": ["交通广播", "音乐电台", "新闻广播", "相声电台", "FM93.8"],
    "show": lines("""
    还珠格格
    亮剑
    庆余年
    狂飙
    乡村爱情
    喜羊羊与灰太狼
    熊出没
    奔跑吧
    非诚勿扰
    快乐大本营
    中国好声音
    天龙八部
    射雕英雄传
    白蛇传
    大话西游
    霸王别姬
    泰坦尼克号
    功夫熊猫
    海贼王
    名侦探柯南
    三国演义
    水浒传
    人民的名义
    父母爱情
    """),
    "showq": ["第几集", "什么时候播", "在哪个台", "几点开始", "全集", "最新一集", "主演是谁", "结局是什么",
              "讲的什么", "有第二部吗", "播到哪了"],
    "website": ["百度", "新浪", "搜狐", "网易", "优酷", "爱奇艺", "腾讯视频", "知乎", "豆瓣", "B站",
                "12306", "携程", "去哪儿", "京东商城", "当当网"],
    "webq": ["打开", "进入", "上", "登录", "浏览", "搜索"],
    "celeb": ["刘德华", "成龙", "姚明", "马云", "赵本山", "周星驰", "杨幂", "鹿晗", "刘翔", "郎朗"],
    "celebq": ["多大了", "是哪里人", "老婆是谁", "有几个孩子", "身高多少", "最新消息", "演过什么电影"],
    "fact": lines("""
    地球有多大
    太阳离我们多远
    长城有多长
    珠穆朗玛峰多高
    世界上最大的动物是什么
    人为什么要睡觉
    天为什么是蓝的
    企鹅生活在哪里
    中国有多少个省
    美国总统是谁
    第一个登上月球的人是谁
    黄河有多长
    """),
    "disease": ["高血压", "糖尿病", "胃炎", "肺炎", "痔疮", "湿疹", "关节炎", "颈椎病", "脂肪肝", "痛风",
                "鼻炎", "中耳炎", "荨麻疹", "口腔溃疡", "偏头痛", "贫血", "近视", "便秘", "骨质疏松"],
    "diseaseq": ["怎么治", "吃什么药好", "有什么症状", "能根治吗", "要注意什么", "怎么调理", "是怎么引起的",
                 "会传染吗", "得了怎么办", "饮食禁忌", "偏方"],
    "mathx": ["2的10次方", "根号2", "100的平方", "圆周率", "27的立方根", "15的阶乘", "sin30度",
              "一斤等于多少克", "一英寸是多少厘米", "华氏100度是多少摄氏度", "3分之1加4分之1"],
    "mathq": ["是多少", "等于几", "怎么算", "帮我算一下", ""],
    "riddle": ["猜个谜语", "来个脑筋急转弯", "出个字谜", "讲个灯谜", "来个歇后语", "说个绕口令", "对个对联",
               "玩成语接龙", "讲个鬼故事", "说个冷笑话", "来段相声", "讲个睡前故事"],
    "festival": ["春节", "元宵节", "清明节", "端午节", "中秋节", "重阳节", "植树节", "情人节", "母亲节",
                 "父亲节", "国庆节", "冬至"],
    "festivalq": ["是哪天", "是几月几号", "还有几天", "放几天假", "是什么时候", "有什么习俗", "的由来"],
    "sched": ["把明天的会议改到下午", "查看今天的日程", "本周有什么待办", "清空所有提醒", "删除闹钟",
              "添加一个日程", "我明天有什么安排", "把闹钟改成七点半", "取消所有提醒", "下周一提醒我交报告"],
    "contact": ["新建联系人", "删除联系人", "查找联系人", "把这个号码存起来", "通讯录里有没有"],
    "bus": ["1路", "5路", "22路", "K8路", "地铁2号线", "机场大巴", "夜班车", "BRT"],
    "busq": ["几点发车", "末班车几点", "经过哪些站", "还有多久到", "在哪坐", "票价多少"],
    "shop": ["iPhone", "华为手机", "洗衣机", "空调", "羽绒服", "运动鞋", "笔记本电脑", "口红", "奶粉"],
    "shopq": ["多少钱", "哪个牌子好", "在哪买便宜", "最新款", "怎么选", "推荐一下", "打折吗"],
}

FALLBACK_TEMPLATES = [
    "{city}{wday}{weatherq}",
    "{wday}{city}{weatherq}",
    "{wday}{weatherq}",
    "{play}{singer}的{song}",
    "{play}{singer}的歌",
    "{play}{song}",
    "{dish}{dishq}",
    "教我做{dish}",
    "{stock}{stockq}",
    "{word}用{lang}怎么说",
    "把{word}翻译成{lang}",
    "{num}{op}{num}等于多少",
    "算一下{num}{op}{num}",
    "{tv}{tvq}",
    "{appv}{app}",
    "背一首{poet}{poemq}",
    "{poet}{poemq}",
    "{dest}{navq}",
    "从{city}到{city}的{flight}",
    "{wday}{city}飞{city}的{flight}",
    "{wday}去{city}的{train}",
    "从{city}到{city}的{train}还有吗",
    "{team}{matchq}",
    "{lotto}{lottoq}",
    "{movie}{movieq}",
    "{illness}{illq}",
    "看一下{topic}新闻",
    "今天的{topic}新闻",
    "我想看{novel}",
    "{novel}最新章节",
    "打开{radio}",
    "收听{radio}",
    "{wday}{city}有什么好玩的",
    "给{person}打电话",
    "打电话给{person}",
    "给{person}发短信说我晚点到",
    "提醒我{wday}给{person}打电话",
    "{wday}早上六点叫醒我",
    "帮我查一下{city}的酒店",
    "去{city}旅游有什么推荐",
    "附近有什么{dish}好吃的店",
    "做{dish}需要什么材料",
    "{dish}要哪些食材",
    "{show}{showq}",
    "我想看{show}",
    "播放{show}",
    "{show}",
    "{movie}",
    "{song}",
    "{webq}{website}",
    "{website}官网",
    "{celeb}{celebq}",
    "{fact}",
    "{disease}{diseaseq}",
    "得了{disease}怎么办",
    "{illness}了{illq}",
    "{mathx}{mathq}",
    "{riddle}",
    "给我{riddle}",
    "{festival}{festivalq}",
    "{sched}",
    "{contact}",
    "{contact}{person}",
    "{person}的电话是多少",
    "{person}的手机号",
    "{bus}{busq}",
    "{bus}公交{busq}",
    "{shop}{shopq}",
    "{wday}{city}到{city}的高铁几点",
    "{novel}",
    "{tv}",
    "{app}",
    "{singer}",
]


# ---------------------------------------------------------------------------------------------- build
INTENTS: dict[str, dict] = {
    "complaint": {
        "description": "Reports a problem or asks for action (repairs, environment, noise, parking, property "
        "management, safety, neighbours); also follow-ups on own reports (progress, urging, rating, reopening).",
        "seeds": COMPLAINT_SEEDS, "slots": COMPLAINT_SLOTS, "templates": COMPLAINT_TEMPLATES, "per_template": 40,
        "lookups": {"building_words": BUILDING_WORDS},
    },
    "coupon": {
        "description": "Points (积分) and the points mall: balance, earning, merchant coupons, redeeming, my "
        "coupons, using one at a shop.",
        "seeds": COUPON_SEEDS, "slots": COUPON_SLOTS, "templates": COUPON_TEMPLATES, "per_template": 40,
        "lookups": {"merchants": MERCHANTS, "coupons": COUPONS},
    },
    "course_booking": {
        "description": "Community courses (群众夜校) and bookable activities (volunteering, 义诊): what exists, "
        "when and where, booking, cancelling, my bookings, places left, points cost.",
        "seeds": COURSE_SEEDS, "slots": COURSE_SLOTS, "templates": COURSE_TEMPLATES, "per_template": 40,
        "lookups": {"courses": COURSES, "activities": ACTIVITIES},
    },
    "query": {
        "description": "Asks for information or guidance without asking anyone to act: certificates, social "
        "and medical insurance, subsidies, 居住证, office hours and places, rules and policies.",
        "seeds": QUERY_SEEDS, "slots": QUERY_SLOTS, "templates": QUERY_TEMPLATES, "per_template": 45,
        "lookups": {},
    },
    "smalltalk": {
        "description": "Greetings, thanks, chit-chat with the assistant.",
        "seeds": SMALLTALK_SEEDS, "slots": SMALLTALK_SLOTS, "templates": SMALLTALK_TEMPLATES, "per_template": 25,
        "lookups": {},
    },
    "handoff": {
        "description": "Asks for a human: 转人工, 找工作人员, 网格员联系我.",
        "seeds": HANDOFF_SEEDS, "slots": HANDOFF_SLOTS, "templates": HANDOFF_TEMPLATES, "per_template": 60,
        "lookups": {},
    },
    "fallback": {
        "description": "Out of scope for a community service assistant (weather, music, travel tickets, stocks, "
        "recipes, translation, maths, TV, apps, jokes, poems, lottery, navigation, news, sports, phone, "
        "alarms, health advice …) or unintelligible.",
        "seeds": FALLBACK_SEEDS, "slots": FALLBACK_SLOTS, "templates": FALLBACK_TEMPLATES, "per_template": 25,
        "lookups": {},
    },
}


JIEBA_DICT = Path(jieba.__file__).parent / "dict.txt"


def background(rng: random.Random, n: int, core_text: str) -> list[str]:
    """Unintelligible / off-topic word salad from frequent jieba dictionary words absent from our domain.

    A broad background for `fallback`, so that unknown content falls there rather than into the
    biggest core intent.
    """
    words = []
    for line in JIEBA_DICT.read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[1].isdigit() and int(parts[1]) >= 3000 and 2 <= len(parts[0]) <= 4:
            if parts[0] not in core_text and not re.search(r"[a-zA-Z0-9]", parts[0]):
                words.append(parts[0])
    out: set[str] = set()
    while len(out) < n:
        out.add("".join(rng.sample(words, rng.choice([1, 1, 2, 2, 3]))))
    return sorted(out)


def fill_nested(slots: dict[str, list[str]], rng: random.Random) -> dict[str, list[str]]:
    """Resolve slot values that themselves contain placeholders (``给{person}发短信``)."""
    out: dict[str, list[str]] = {}
    for name, values in slots.items():
        resolved = []
        for v in values:
            for inner in re.findall(r"\{(\w+)\}", v):
                v = v.replace("{" + inner + "}", rng.choice(slots[inner]))
            resolved.append(v)
        out[name] = resolved
    return out


def dedupe(items: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for x in items:
        x = x.strip()
        if x and x not in seen:
            seen.add(x)
            out.append(x)
    return out


def build(intent: str, spec: dict, rng: random.Random) -> tuple[list[str], list[str]]:
    seeds = dedupe(spec["seeds"])
    rng.shuffle(seeds)
    n_test_seeds = max(3, len(seeds) // 5)
    test: list[str] = list(seeds[:n_test_seeds])
    train: list[str] = list(seeds[n_test_seeds:])
    # Seeds also appear once with noise in their own split.
    train += [noisy(s, rng) for s in train]
    test += [noisy(s, rng) for s in test[:n_test_seeds]]
    slots = fill_nested(spec["slots"], rng)
    templates = spec["templates"]
    order = list(range(len(templates)))
    rng.shuffle(order)
    test_templates = set(order[: max(1, len(templates) // 5)])
    for i, template in enumerate(templates):
        texts = expand(template, slots, rng, spec["per_template"])
        texts = [noisy(t, rng) if rng.random() < 0.6 else t for t in texts]
        (test if i in test_templates else train).extend(texts)
    train_d = dedupe(train)
    test_set = set(train_d)
    return train_d, [t for t in dedupe(test) if t not in test_set]


class _Dumper(yaml.SafeDumper):
    pass


def _str_presenter(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", data)


_Dumper.add_representer(str, _str_presenter)


def write_yaml(path: Path, header: str, doc: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    body = yaml.dump(doc, Dumper=_Dumper, allow_unicode=True, sort_keys=False, width=200)
    path.write_text(header + body, encoding="utf-8")


def main() -> None:
    rng = random.Random(SEED)
    # The other intents' data must not contain strings claimed by another intent.
    built = {name: build(name, spec, rng) for name, spec in INTENTS.items()}
    core_text = "".join(t for name in INTENTS if name != "fallback" for t in built[name][0] + built[name][1])
    noise = background(rng, 700, core_text)
    built["fallback"][0].extend(noise[: int(len(noise) * 0.8)])
    built["fallback"][1].extend(noise[int(len(noise) * 0.8) :])
    owner: dict[str, str] = {}
    for name, (train, test) in built.items():
        for t in train + test:
            owner.setdefault(t, name)
    for name, spec in INTENTS.items():
        train, test = built[name]
        train = [t for t in train if owner[t] == name]
        test = [t for t in test if owner[t] == name]
        doc: dict = {"intent": name, "description": spec["description"]}
        syn = {k: v for k, v in SYNONYMS.items() if SYNONYM_OWNER.get(k, "complaint") == name}
        if syn:
            doc["synonyms"] = syn
        if spec["lookups"]:
            doc["lookups"] = spec["lookups"]
        doc["examples"] = train
        header = (f"# Training examples for the `{name}` intent. One example per list item; edit freely and run\n"
                  "# `python -m bot intents check` then `python -m bot intents reload`.\n"
                  "# synonyms: canonical word -> variants (typos, homophones) rewritten before classification.\n")
        write_yaml(DATA_DIR / f"{name}.yml", header, doc)
        write_yaml(DATA_DIR / "test" / f"{name}.yml",
                   f"# Held-out test examples for `{name}`: never used in training.\n",
                   {"intent": name, "examples": test})
        print(f"{name:15s} train={len(train):5d} test={len(test):4d}")




# ----------------------------------------------------------------------------------- routing (default)
ROUTING: dict[str, str] = {
    "物业服务": """
物业服务态度差
物业费收了不办事
保安不在岗
保洁不打扫楼道
物业乱收费
物业不公示收支
电梯坏了物业不修
单元门禁坏了物业不管
物业擅自涨价
维修基金被挪用
物业管理混乱
楼道灯坏了物业一直不换
报修了物业不派人
物业经理电话打不通
快递乱堆在物业门口没人管
""",
    "市政设施": """
路灯不亮
马路上井盖丢了
人行道地砖坏了
路面塌陷
公交站台破损
市政道路坑洼不平
排水沟堵塞下雨积水
红绿灯坏了
路牌被撞倒了
公共厕所坏了
无障碍通道被占
桥上的栏杆松动
道路施工一直不完工
街边座椅坏了
下水道井盖响
""",
    "环境卫生": """
垃圾没人清运
垃圾桶满了溢出来
小区里到处是狗屎
楼道里堆满垃圾
有人乱倒建筑垃圾
河道发臭
化粪池外溢
餐馆油烟太大
污水直排
老鼠太多
蚊虫滋生
垃圾站臭味大
有人焚烧垃圾
工地扬尘严重
垃圾分类没人管
""",
    "噪音扰民": """
楼上装修太吵
广场舞音响太大
半夜施工噪音
邻居家狗一直叫
楼下KTV太吵
早上五点垃圾车噪音
酒吧音乐扰民
楼上小孩跑跳
空调外机噪音大
商铺大喇叭叫卖
夜里有人喝酒吵闹
工地晚上打桩
小区里有人打麻将到半夜
汽车改装排气声太吵
邻居唱歌到深夜
""",
    "停车与交通": """
有人乱停车
消防通道被车堵了
车位被占
小区里有僵尸车
电动车乱停
外来车辆随便进小区
停车收费不合理
车开得太快需要减速带
路口经常堵车
共享单车堆满路边
小区门口占道停车
停车场道闸坏了
货车深夜进出小区
车库入口积水
小区车位不够
""",
    "安全隐患": """
有人飞线充电
电动车在楼道充电
楼道有燃气味
电线裸露
外墙瓷砖要掉下来
灭火器过期
消防栓没水
楼道堆放杂物堵塞通道
高空抛物
窗户玻璃要掉下来
井盖缺失有人掉下去
广告牌松动
老旧电线冒火花
电梯困人
树枝压着电线
""",
    "邻里纠纷": """
邻居占用楼道放鞋柜
楼上漏水到我家不肯修
邻居家空调滴水到我家
邻居养狗不拴绳
邻居在公共区域种菜
楼上往下扔东西
邻居把垃圾放门口
邻居家装修把我家墙弄裂了
邻居占了我家车位
邻居家的摄像头对着我家门
对门油烟排到楼道
邻居堵着消防门
邻居家养鸽子很脏
邻居晾衣服滴水
和邻居因为漏水吵起来了
""",
    "水电气暖": """
停水了也不通知
自来水发黄
水压太低
家里停电了
电费算得不对
燃气管道漏气
暖气不热
供暖温度不达标
二次供水水箱脏
水管爆了
热水器燃气打不着
暖气片漏水
电表跳闸
天然气开通太慢
冬天暖气还没来
""",
    "绿化": """
绿化带被毁
树木该修剪了
草坪被人踩坏
有人在绿地种菜
树枯死了没人管
小区绿化太少
树根把路面拱起来了
大树挡住阳光
绿化带里全是垃圾
草坪好久没人修剪
树上有马蜂窝
花坛破损
行道树倒了
绿化被改成停车位
杨絮柳絮太多
""",
    "违章建筑": """
楼顶私搭乱建
一楼住户私自扩建院子
有人占用绿地盖房子
阳台违规外扩
楼道里私自加隔断
小区里搭了违章棚子
底商私自改变房屋结构
私自开门开窗破坏承重墙
顶楼加盖阳光房
车库改成住人
在公共区域建围墙
违法建设没人管
小区空地被人圈起来
私自拆除承重墙
楼顶搭铁皮屋
""",
    "其他": """
建议社区多组织活动
希望增加老年食堂
社区工作人员态度不好
网格员不回消息
办事效率太低
希望开通更多便民服务
对社区工作提个意见
反映一个问题
这个事情谁来管一下
投诉一件事情
我要反映情况
希望社区重视一下
提个建议
社区公告没人看得到
工作人员办事推诿
""",
}


def write_routing() -> None:
    categories = {name: lines(block) for name, block in ROUTING.items()}
    header = ("# Default complaint routing: category -> example complaints. The category names are the keys of\n"
              "# the dispatch table in the bot's configuration. Operators can instead train on their own tickets:\n"
              "# `python -m bot routing train FILE --text-column C --label-column L`.\n")
    write_yaml(DATA_DIR / "routing" / "categories.yml", header, {"categories": categories})
    print(f"routing: {len(categories)} categories, {sum(len(v) for v in categories.values())} examples")


if __name__ == "__main__":
    main()
    write_routing()
