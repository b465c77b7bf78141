// The kiosk's words in each language it knows. A language of the catalogue without a
// translation here shows product names in that language and these words in English, and the
// page is then marked as English (wordsLanguage), or screen readers read English words with,
// say, a Mandarin voice.

const STRINGS = {
  en: {
    title: "Find a product",
    prompt: "What are you looking for?",
    mode_photo: "Show a photo",
    mode_photo_hint: "Hold the product up to the camera",
    mode_voice: "Ask out loud",
    mode_voice_hint: "Say the product's name",
    mode_text: "Type the name",
    mode_text_hint: "Results appear as you type",
    language: "Language",
    close: "Close",
    larger_text: "Larger text",
    start_over: "Start over",
    camera_label: "Camera picture",
    camera_ready: "Hold the product in front of the camera, then press Take photo.",
    camera_off: "The camera is not available. Choose a picture instead.",
    shutter: "Take photo",
    pick_photo: "Choose a picture",
    talk: "Hold to talk",
    talk_stop: "Let go to search",
    talk_tap_stop: "Tap again to search",
    talk_help: "Hold the button and say the product's name, then let go. " +
      "You can also tap once to start and tap again to stop.",
    talk_limit_one: "You can speak for up to 1 second.",
    talk_limit_other: "You can speak for up to {n} seconds.",
    seconds_left_one: "1 second left",
    seconds_left_other: "{n} seconds left",
    listening: "Listening…",
    mic_off: "The microphone is not available. Please type instead.",
    heard: "You said: “{text}”",
    nothing_heard: "Sorry, I did not catch that. Please try again.",
    search_label: "Product name",
    clear: "Clear",
    searching: "Searching…",
    looking: "Looking…",
    results_for: "Results for “{q}”",
    photo_results: "This looks like:",
    did_you_mean: "Did you mean…",
    chosen: "Here it is:",
    not_in_store: "Not in this store",
    not_in_store_text: "We could not find “{q}” in this store. Please ask a member of staff.",
    not_in_store_photo: "We could not recognise this product. Try another photo, or ask a member of staff.",
    photo_unsure: "Not sure what this is",
    hear: "Hear the answer",
    maybe: "Or did you mean one of these?",
    photo_unreadable: "This picture could not be used. Please take a photo with the camera, or ask a member of staff.",
    photo_unreadable_pick: "This picture could not be used. Please choose another picture, or ask a member of staff.",
    found: "Products found: {n}",
    shelf: "Shelf",
    left: "{n} left",
    out_here: "Out of stock here",
    out_here_elsewhere: "Out of stock here, available at {store}",
    unavailable: "This search is not available right now. Please try another way.",
    search_down: "The search is not working right now. Please ask a member of staff.",
    idle_title: "Are you still there?",
    idle_text_one: "The screen will clear for the next customer in {n} second.",
    idle_text_other: "The screen will clear for the next customer in {n} seconds.",
    still_here: "I'm still here",
  },
  ko: {
    title: "상품 찾기",
    prompt: "무엇을 찾으세요?",
    mode_photo: "사진으로 찾기",
    mode_photo_hint: "상품을 카메라에 보여 주세요",
    mode_voice: "말로 찾기",
    mode_voice_hint: "상품 이름을 말해 주세요",
    mode_text: "이름 입력",
    mode_text_hint: "입력하는 대로 결과가 나옵니다",
    language: "언어",
    close: "닫기",
    larger_text: "글자 크게",
    start_over: "처음으로",
    camera_label: "카메라 화면",
    camera_ready: "상품을 카메라 앞에 들고 사진 찍기를 누르세요.",
    camera_off: "카메라를 쓸 수 없습니다. 사진을 골라 주세요.",
    shutter: "사진 찍기",
    pick_photo: "사진 고르기",
    talk: "누르고 말하기",
    talk_stop: "손을 떼면 찾습니다",
    talk_tap_stop: "다시 누르면 찾습니다",
    talk_help: "버튼을 누른 채 상품 이름을 말하고 손을 떼세요. " +
      "한 번 눌러 시작하고 다시 눌러 끝낼 수도 있습니다.",
    talk_limit_other: "최대 {n}초까지 말할 수 있습니다.",
    seconds_left_other: "{n}초 남음",
    listening: "듣는 중…",
    mic_off: "마이크를 쓸 수 없습니다. 이름을 입력해 주세요.",
    heard: "말씀하신 내용: “{text}”",
    nothing_heard: "잘 듣지 못했습니다. 다시 말씀해 주세요.",
    search_label: "상품 이름",
    clear: "지우기",
    searching: "검색 중…",
    looking: "찾는 중…",
    results_for: "“{q}” 검색 결과",
    photo_results: "이 상품 같습니다:",
    did_you_mean: "이것을 찾으셨나요?",
    chosen: "찾으신 상품:",
    not_in_store: "이 매장에 없는 상품",
    not_in_store_text: "이 매장에서 “{q}”{q_object} 찾지 못했습니다. 직원에게 문의해 주세요.",
    not_in_store_photo: "상품을 알아보지 못했습니다. 다른 사진을 찍거나 직원에게 문의해 주세요.",
    photo_unsure: "어떤 상품인지 잘 모르겠습니다",
    hear: "답변 듣기",
    maybe: "혹시 이 중에 있나요?",
    photo_unreadable: "이 사진은 쓸 수 없습니다. 카메라로 찍거나 직원에게 문의해 주세요.",
    photo_unreadable_pick: "이 사진은 쓸 수 없습니다. 다른 사진을 고르거나 직원에게 문의해 주세요.",
    found: "찾은 상품: {n}개",
    shelf: "진열대",
    left: "{n}개 남음",
    out_here: "이 매장 품절",
    out_here_elsewhere: "이 매장 품절, {store}에 있음",
    unavailable: "지금은 이 검색을 쓸 수 없습니다. 다른 방법으로 찾아 주세요.",
    search_down: "지금은 검색이 되지 않습니다. 직원에게 문의해 주세요.",
    idle_title: "계속 이용하시나요?",
    idle_text_other: "{n}초 후 다음 손님을 위해 화면이 지워집니다.",
    still_here: "계속 이용",
  },
  zh: {
    title: "查找商品",
    prompt: "您在找什么？",
    mode_photo: "拍照查找",
    mode_photo_hint: "把商品拿到摄像头前",
    mode_voice: "说出来",
    mode_voice_hint: "说出商品的名称",
    mode_text: "输入名称",
    mode_text_hint: "边输入边显示结果",
    language: "语言",
    close: "关闭",
    larger_text: "放大字体",
    start_over: "重新开始",
    camera_label: "摄像头画面",
    camera_ready: "把商品拿到摄像头前，然后按“拍照”。",
    camera_off: "摄像头无法使用。请选择一张图片。",
    shutter: "拍照",
    pick_photo: "选择图片",
    talk: "按住说话",
    talk_stop: "松开即查找",
    talk_tap_stop: "再按一下即查找",
    talk_help: "按住按钮说出商品名称，然后松开。" +
      "也可以按一下开始，再按一下结束。",
    talk_limit_other: "最多可以说 {n} 秒。",
    seconds_left_other: "还剩 {n} 秒",
    listening: "正在听…",
    mic_off: "麦克风无法使用。请输入名称。",
    heard: "您说的是：“{text}”",
    nothing_heard: "对不起，没有听清楚。请再说一遍。",
    search_label: "商品名称",
    clear: "清除",
    searching: "正在搜索…",
    looking: "正在查找…",
    results_for: "“{q}”的搜索结果",
    photo_results: "这看起来像：",
    did_you_mean: "您要找的是不是…",
    chosen: "就是这个：",
    not_in_store: "本店没有",
    not_in_store_text: "本店没有找到“{q}”。请询问店员。",
    not_in_store_photo: "无法识别这个商品。请换一张照片，或询问店员。",
    photo_unsure: "不确定这是什么",
    hear: "听答案",
    maybe: "或者您要找的是这些？",
    photo_unreadable: "这张图片无法使用。请用摄像头拍照，或询问店员。",
    photo_unreadable_pick: "这张图片无法使用。请选择另一张图片，或询问店员。",
    found: "找到商品：{n} 件",
    shelf: "货架",
    left: "剩 {n} 件",
    out_here: "本店缺货",
    out_here_elsewhere: "本店缺货，{store}有货",
    unavailable: "这种查找方式现在无法使用。请换一种方式。",
    search_down: "搜索现在无法使用。请询问店员。",
    idle_title: "您还在吗？",
    idle_text_other: "屏幕将在 {n} 秒后为下一位顾客清空。",
    still_here: "我还在",
  },
};

let current = "en";

export function setLanguage(lang) {
  current = lang;
}

export function language() {
  return current;
}

// The language the kiosk's own words are in: the one chosen, or English where it has none.
export function wordsLanguage() {
  return STRINGS[current] ? current : "en";
}

export function t(key, vars = {}) {
  const text = STRINGS[current]?.[key] ?? STRINGS.en[key];
  return text.replace(/\{(\w+)\}/g, (_, name) => String(vars[name]));
}

// A text with a count {n} in it, in the form the language uses for that number: the key with
// "_one", "_few", "_other"… (Intl.PluralRules), "_other" where the language has no such form.
// English had said "in 1 seconds"; Korean has one form for every number.
export function tn(key, n, vars = {}) {
  const lang = wordsLanguage();
  const form = `${key}_${new Intl.PluralRules(lang).select(n)}`;
  return t(form in STRINGS[lang] ? form : `${key}_other`, { ...vars, n });
}

// The Korean object particle after a word: 을 after a closing consonant, 를 after a vowel, told
// from the last Hangul syllable (written "을(를)", it was read aloud as two particles), or from a
// last digit as it is read (영 일 삼 육 칠 팔 close on a consonant; 십, 백, 천 and 만 too).
// Punctuation, symbols and spaces after the word do not count ("사과?"). A word that ends in
// another script ("Oatly") keeps "을(를)": how it is read decides, not its letters.
const DIGITS_CLOSED = "013678";

export function objectParticle(word) {
  const last = word.normalize("NFC").replace(/[\s\p{P}\p{S}\p{Cf}]+$/u, "").at(-1) ?? "";
  if (last >= "0" && last <= "9") return DIGITS_CLOSED.includes(last) ? "을" : "를";
  const code = last.codePointAt(0) ?? 0;
  if (code < 0xac00 || code > 0xd7a3) return "을(를)";
  return (code - 0xac00) % 28 === 0 ? "를" : "을";
}

// Fills every [data-i18n] element's text and every [data-i18n-label] element's aria-label.
export function translatePage(root = document) {
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-count]")) { // a count in data-n
    el.textContent = tn(el.dataset.i18nCount, Number(el.dataset.n));
  }
  for (const el of root.querySelectorAll("[data-i18n-label]")) {
    el.setAttribute("aria-label", t(el.dataset.i18nLabel));
  }
}

// The language's own name for itself ("한국어"), for the language list.
export function autonym(lang) {
  try {
    return new Intl.DisplayNames([lang], { type: "language" }).of(lang);
  } catch {
    return lang;
  }
}
