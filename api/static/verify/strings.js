// The panel's plain-language lines, in zh-CN (the default) and English.
const money = (v, f) => `${f.amounts[v.currency] ?? ""}${v.text}`;

export const STRINGS = {
  "zh-CN": {
    amounts: { CNY: "¥", USD: "US$", EUR: "€", HKD: "HK$", GBP: "£", JPY: "¥" },
    running: "正在您的浏览器中验证……",
    verified: "已验证：以下每一步都在您的浏览器中通过，只信任所固定的日志密钥。",
    failed: (step) => `验证失败，失败的步骤：${step}`,
    noCrypto: "此浏览器无法验证签名（需要 HTTPS 与 WebCrypto 的 Ed25519）。请使用较新的浏览器，或用 luodi verify-receipt 离线核对。",
    fetchFailed: "无法取得收据数据。",
    fallback: "此浏览器的 WebCrypto 没有 Ed25519，改用随页面提供的 @noble/ed25519 验证签名。",
    pinnedKey: "固定的日志密钥",
    fingerprint: "指纹（公钥的 SHA-256 前 16 字节）",
    keyChanged: (old, now) => `警告：日志密钥已改变！您上次访问时记住的是 ${old}，本站现在给出的是 ${now}。请与慈善机构或监管部门公布的密钥核对；在核对之前，本页仍以您记住的密钥验证。`,
    pasteLabel: "粘贴慈善机构或监管部门公布的日志密钥，以它重新验证：",
    pasteButton: "用此密钥验证",
    badPaste: "这不是一个有效的日志密钥（名称+8位十六进制+base64）。",
    steps: {
      entry: [() => "捐赠记录的规范字节（RFC 8785）的哈希正是您的收据号。", "捐赠记录与收据号不符"],
      inclusion: [(f) => `包含证明到达检查点的根哈希：您的捐赠在共 ${f.size} 条记录的日志中。`, "包含证明没有到达检查点的根哈希"],
      checkpoint: [() => "检查点由您固定的日志密钥签名。", "检查点没有由您固定的日志密钥签名"],
      disbursement: [(f) => `第 ${f.seq} 号支出（付给 ${f.payee}）在日志中，并由慈善机构当时登记的 ${f.signers} 把密钥签名（至少需要 ${f.threshold} 把）。`, (f) => `第 ${f.seq} 号支出未通过验证`],
      amounts: [(f, s) => `金额相符：已支出 ${money(f.spent, s)} + 已退款 ${money(f.refunded, s)} + 未支出 ${money(f.unspent, s)} = 捐赠 ${money(f.amount, s)}。`, "金额不相符"],
    },
  },
  en: {
    amounts: { CNY: "¥", USD: "US$", EUR: "€", HKD: "HK$", GBP: "£", JPY: "¥" },
    running: "Verifying in your browser…",
    verified: "Verified: every step below passed in your browser, trusting only the pinned log key.",
    failed: (step) => `Verification failed at step: ${step}`,
    noCrypto: "This browser cannot verify signatures (it needs HTTPS and Ed25519 in WebCrypto). Use a newer browser, or check the receipt offline with luodi verify-receipt.",
    fetchFailed: "Could not fetch the receipt's data.",
    fallback: "This browser's WebCrypto lacks Ed25519; signatures are checked with the @noble/ed25519 copy this site serves.",
    pinnedKey: "Pinned log key",
    fingerprint: "Fingerprint (first 16 bytes of SHA-256 of the public key)",
    keyChanged: (old, now) => `Warning: the log key has changed! On your last visit you pinned ${old}; this site now gives ${now}. Compare it with the key the charity or a regulator published; until then this page keeps checking against the key you pinned.`,
    pasteLabel: "Paste the log key that the charity or a regulator published, and check against it:",
    pasteButton: "Check with this key",
    badPaste: "That is not a valid log key (name+8 hex digits+base64).",
    steps: {
      entry: [() => "The donation record's canonical bytes (RFC 8785) hash to your receipt number.", "The donation record does not match your receipt number"],
      inclusion: [(f) => `The inclusion proof reaches the checkpoint's root: your gift is in the log of ${f.size} entries.`, "The inclusion proof does not reach the checkpoint's root"],
      checkpoint: [() => "The checkpoint is signed by the log key you pinned.", "The checkpoint is not signed by the log key you pinned"],
      disbursement: [(f) => `Disbursement #${f.seq} (paid to ${f.payee}) is in the log and signed by ${f.signers} of the keys the charity had registered then (${f.threshold} needed).`, (f) => `Disbursement #${f.seq} does not check`],
      amounts: [(f, s) => `The amounts add up: spent ${money(f.spent, s)} + refunded ${money(f.refunded, s)} + unspent ${money(f.unspent, s)} = the gift of ${money(f.amount, s)}.`, "The amounts do not add up"],
    },
  },
};
