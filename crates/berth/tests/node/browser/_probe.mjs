import { withBrowser, newContext, look } from './harness.mjs';
await withBrowser(async (b) => {
  for (const js of [true, false]) {
    const c = await newContext(b, { javaScriptEnabled: js });
    const p = await c.newPage();
    await p.setContent('<html lang="en"><body><main><h1>x</h1><input type="text"><p style="color:#aaa">low</p></main></body></html>');
    try { await look(p, 'probe'); console.log('no violation?!'); } catch (e) { console.log('js', js, e.message.slice(0, 400)); }
  }
});
