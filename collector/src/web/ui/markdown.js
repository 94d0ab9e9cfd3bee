// A small, safe Markdown renderer for knowledge-base steps: headings, paragraphs, bulleted and
// numbered lists, fenced code blocks, inline code, **bold**, *emphasis* and [links](url) with
// http(s) or site-relative targets. It builds DOM nodes from text; HTML in the source is shown
// as text, never interpreted.

import { el } from './common.js';

/** Inline spans of one line of text as nodes. */
function inline(text) {
  const out = [];
  const pattern = /(`[^`]+`)|(\*\*[^*]+\*\*)|(\*[^*]+\*)|(\[[^\]]+\]\([^)\s]+\))/g;
  let last = 0;
  let m;
  while ((m = pattern.exec(text)) !== null) {
    if (m.index > last) out.push(text.slice(last, m.index));
    const t = m[0];
    if (m[1]) out.push(el('code', { text: t.slice(1, -1) }));
    else if (m[2]) out.push(el('strong', { text: t.slice(2, -2) }));
    else if (m[3]) out.push(el('em', { text: t.slice(1, -1) }));
    else {
      const close = t.indexOf('](');
      const label = t.slice(1, close);
      const href = t.slice(close + 2, -1);
      if (/^(https?:\/\/|\/(?!\/))/i.test(href)) {
        out.push(el('a', { href, rel: 'noopener noreferrer', text: label }));
      } else {
        out.push(t);
      }
    }
    last = m.index + t.length;
  }
  if (last < text.length) out.push(text.slice(last));
  return out;
}

/** Renders `source` into a <div class="kb">. */
export function markdown(source) {
  const root = el('div', { class: 'kb' });
  const lines = String(source || '').replace(/\r\n?/g, '\n').split('\n');
  let para = [];
  let list = null;
  let code = null;
  const flushPara = () => {
    if (para.length) root.appendChild(el('p', {}, inline(para.join(' '))));
    para = [];
  };
  const flushList = () => {
    if (list) root.appendChild(list);
    list = null;
  };
  for (const line of lines) {
    if (code !== null) {
      if (/^```/.test(line)) {
        root.appendChild(el('pre', {}, el('code', { text: code.join('\n') })));
        code = null;
      } else {
        code.push(line);
      }
      continue;
    }
    if (/^```/.test(line)) {
      flushPara();
      flushList();
      code = [];
      continue;
    }
    const heading = /^(#{1,6})\s+(.*)$/.exec(line);
    const bullet = /^\s*[-*+]\s+(.*)$/.exec(line);
    const numbered = /^\s*\d+[.)]\s+(.*)$/.exec(line);
    if (heading) {
      flushPara();
      flushList();
      const level = Math.min(6, heading[1].length + 2);
      root.appendChild(el('h' + level, {}, inline(heading[2])));
    } else if (bullet || numbered) {
      flushPara();
      const tag = bullet ? 'ul' : 'ol';
      if (!list || list.tagName.toLowerCase() !== tag) {
        flushList();
        list = el(tag);
      }
      list.appendChild(el('li', {}, inline((bullet || numbered)[1])));
    } else if (line.trim() === '') {
      flushPara();
      flushList();
    } else {
      flushList();
      para.push(line.trim());
    }
  }
  if (code !== null) root.appendChild(el('pre', {}, el('code', { text: code.join('\n') })));
  flushPara();
  flushList();
  return root;
}
