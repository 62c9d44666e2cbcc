import { LocalChatModel } from './chat-model.js';
import { readPrompt } from './prompt-reader.js';

const candidates = `Candidate products:
- id: p-1 | name: Storm Trail Runner | category: footwear | price: $129.90 | tags: running, trail, waterproof
- id: p-2 | name: Burr Coffee Grinder | category: kitchen | price: $79.00 | tags: coffee, grinder
- id: p-3 | name: Road Racer 3 | category: footwear | price: $99.00 | tags: running, road
- id: p-4 | name: Merino Running Socks | category: apparel | price: $19.00 | tags: running, wool`;

describe(LocalChatModel.name, () => {
  const model = new LocalChatModel();
  const ask = (content: string, system?: string): string =>
    model.reply([...(system ? [{ role: 'system', content: system }] : []), { role: 'user', content }]);

  describe('when the prompt lists products', () => {
    it('picks the items related to the query and quotes their name, category, price and matching words', () => {
      const reply = ask(`The shopper searched for "waterproof trail shoes".\n${candidates}\nPick the top 2.`);
      expect(reply).toBe(
        'Based on your search for "waterproof trail shoes", I recommend Storm Trail Runner and Road Racer 3. ' +
          'Storm Trail Runner (footwear, $129.90) matches "trail" and "waterproof". Road Racer 3 (footwear, $99.00) fits the footwear you asked about.',
      );
    });

    it('never recommends an item that is not listed and keeps the requested count', () => {
      const reply = ask(`Shopper query: espresso at home.\n${candidates}\nRecommend 1 product.`);
      expect(reply).toContain('Burr Coffee Grinder (kitchen, $79.00)');
      expect(reply).not.toMatch(/Storm|Road Racer|Merino/);
    });

    it('uses the viewed items as the basis when the prompt lists them', () => {
      const reply = ask(`The shopper recently viewed:\n- name: Alpine Trekker Boot | category: footwear | tags: hiking, waterproof\n${candidates}\nChoose 1.`);
      expect(reply).toMatch(/^Based on the items you looked at \(Alpine Trekker Boot\), I recommend Storm Trail Runner\./);
    });

    it('takes the shopper\'s interest from the user turn, not from the system instructions', () => {
      const reply = ask(`Similar to:\n- name: Alpine Trekker Boot | category: footwear | tags: hiking, waterproof\n${candidates}\nChoose 1.`, 'You work for an online outdoor shop; be friendly and mention prices.');
      expect(reply).toMatch(/^Based on the items you looked at \(Alpine Trekker Boot\), I recommend Storm Trail Runner\./);
      expect(reply).not.toMatch(/online|friendly|prices/);
    });

    it('keeps the given order when nothing in the prompt relates to the items', () => {
      const reply = ask(`Explain these recommendations.\n${candidates}`);
      expect(reply).toMatch(/I recommend Storm Trail Runner, Burr Coffee Grinder, Road Racer 3 and Merino Running Socks\./);
    });

    it('fits the explanation into the requested number of sentences', () => {
      const reply = ask(`Query: running.\n${candidates}\nPick 3 and explain in one sentence.`);
      expect(reply.match(/[.!?](\s|$)/g)).toHaveLength(1);
      expect(reply).toContain('Road Racer 3 (footwear, $99.00), which');
    });

    it('reads products given as JSON', () => {
      const reply = ask('Why these?\n```json\n{"products":[{"id":"a","name":"Espresso Machine","category":"kitchen","price":299,"tags":["coffee"]}]}\n```');
      expect(reply).toBe('Based on what you asked for, I recommend Espresso Machine. Espresso Machine (kitchen, 299.00) is tagged coffee.');
    });

    it('replies JSON with the picks when asked for JSON, shaped by a schema when one is given', () => {
      const json = JSON.parse(model.reply([{ role: 'user', content: `Query: trail.\n${candidates}\nTop 1 in JSON.` }], { json: {} })) as {
        recommendations: { id: string; reason: string }[];
        explanation: string;
      };
      expect(json.recommendations).toEqual([{ id: 'p-1', name: 'Storm Trail Runner', category: 'footwear', price: '$129.90', reason: 'matches "trail"' }]);
      const shaped = JSON.parse(
        model.reply([{ role: 'user', content: `Query: trail.\n${candidates}\nTop 1.` }], {
          json: { schema: { type: 'object', properties: { picks: { type: 'array', items: { type: 'object', properties: { id: { type: 'string' }, why: { type: 'string' } } } }, summary: { type: 'string' } } } },
        }),
      ) as { picks: { id: string; why: string }[]; summary: string };
      expect(shaped.picks).toEqual([{ id: 'p-1', why: 'matches "trail"' }]);
      expect(shaped.summary).toMatch(/^Based on/);
    });
  });

  describe('when asked which listed item fits', () => {
    const system = 'You recommend products. Only mention products from the list.';
    const products = 'Products: Trail Runner 3 (running shoe), Alpine Parka (jacket).';

    it('names the listed item that matches, and never quotes the system message back', () => {
      const reply = ask(`${products} Which one is for running?`, system);
      expect(reply).toBe('Trail Runner 3 (running shoe): of the listed items, it is the one that matches "running".');
      expect(reply).not.toMatch(/Only mention|You recommend|Alpine/);
    });

    it('matches by product concept when no word is shared', () => {
      expect(ask(`${products} Which one keeps me warm?`, system)).toBe('Alpine Parka (jacket): of the listed items, it is the one that fits "warm" (winter).');
    });

    it('says plainly when nothing listed matches', () => {
      expect(ask(`${products} Which one is for swimming?`, system)).toBe('None of the listed items (Trail Runner 3 and Alpine Parka) matches "swimming".');
      expect(ask(`${products} Is there anything for swimming?`, system)).toBe('No: none of the listed items (Trail Runner 3 and Alpine Parka) matches "swimming".');
      expect(ask('Products: Trail Runner 3 (running shoe), Alpine Parka (jacket), Camp Stove. Recommend something for swimming.', system)).toBe(
        'None of the listed items (Trail Runner 3, Alpine Parka and Camp Stove) matches "swimming".',
      );
    });

    it('names every match for "which ones", and as many as the question asks for', () => {
      const table = '| Name | Category | Price |\n|---|---|---|\n| Trail Runner 3 | running shoe | $99 |\n| Alpine Parka | jacket | $180 |\n| Road Racer | running shoe | $120 |';
      expect(ask(`${table}\nWhich ones are for running?`)).toBe(
        'Of the listed items, these match: Trail Runner 3 (running shoe, $99), which matches "running"; Road Racer (running shoe, $120), which matches "running".',
      );
      expect(ask(`${table}\nWhich two are for hiking or running?`)).toMatch(/^Of the listed items, these match: Trail Runner 3 .*; Road Racer .*\.$/);
      expect(ask(`${table}\nIs any of them for running?`)).toMatch(/^Yes: Trail Runner 3 \(running shoe, \$99\), which matches "running" and Road Racer/);
    });

    it('recommends only the items that match what is asked for', () => {
      expect(ask('We sell the Trail Runner 3, the Alpine Parka and a Camp Stove. Recommend something for a hike.')).toBe(
        'Based on your interest in "hike", I recommend Alpine Parka and Trail Runner 3. Alpine Parka fits "hike" (hiking gear). Trail Runner 3 fits "hike" (hiking gear).',
      );
    });

    it('picks one item when the question names nothing to match', () => {
      expect(ask(`${products} Which one would you recommend?`, system)).toMatch(/^Based on what you asked for, I recommend Trail Runner 3\./);
    });

    it('answers from stated facts rather than the items when only the facts relate', () => {
      expect(ask(`${products} What time do you open?`, 'Store facts: we open at 9am. You recommend products.')).toBe('From what you provided: Store facts: we open at 9am.');
    });

    it('gives the same reply to the same messages', () => {
      expect(ask(`${products} Which one is for running?`, system)).toBe(ask(`${products} Which one is for running?`, system));
    });
  });

  describe('when the prompt lists no products', () => {
    it('replies exactly what it is told to reply', () => {
      expect(ask('Reply with exactly: OK')).toBe('OK');
      expect(ask('Say "ready"')).toBe('ready');
    });

    it('answers a question from the facts in the conversation', () => {
      const reply = ask('Can I return an item after two weeks?', 'Store facts: we open at 9am. Returns are accepted within 30 days with a receipt. Shipping is free over $50.');
      expect(reply).toBe('From what you provided: Returns are accepted within 30 days with a receipt.');
    });

    it('says honestly when the conversation holds no answer', () => {
      expect(ask('What is the capital of France?')).toContain('it says nothing about "capital" and "france"');
    });

    it('summarizes the text it is given', () => {
      expect(ask('Summarize: The boot is waterproof. It weighs 500 grams. It comes in brown.')).toBe('Summary: The boot is waterproof. It weighs 500 grams.');
    });

    it('greets back', () => {
      expect(ask('Hello!')).toMatch(/^Hello!/);
    });

    it('never quotes instructions back as facts', () => {
      const reply = ask('Which one is for running?', 'You recommend products. Only mention products from the list.');
      expect(reply).toBe('I am a local stand-in model without general knowledge: I can only answer from the conversation, and it says nothing about "running".');
    });

    it('summarizes the text the user gave, not the system prompt', () => {
      const system = 'You are a very helpful assistant who always answers in a friendly and concise way, never inventing facts, and who mentions prices.';
      expect(ask('Summarize: The boot is waterproof. It weighs 500 grams.', system)).toBe('Summary: The boot is waterproof. It weighs 500 grams.');
    });
  });
});

describe('readPrompt', () => {
  it('splits candidates from seed items by the heading above each list', () => {
    const reading = readPrompt([`Recently purchased:\n- Trail Socks\nOptions:\n1. Rain Jacket | price: 80 EUR | tags: rain/outdoor`]);
    expect(reading.seeds.map((s) => s.name)).toEqual(['Trail Socks']);
    expect(reading.candidates).toEqual([{ name: 'Rain Jacket', price: '80 EUR', tags: ['rain', 'outdoor'], facts: {} }]);
  });

  it('reads pick counts and sentence limits in words or digits', () => {
    expect(readPrompt(['Choose two of these.\n- a\n- b\n- c'])).toMatchObject({ pickCount: 2 });
    expect(readPrompt(['Answer in 3 sentences.'])).toMatchObject({ sentenceLimit: 3 });
    expect(readPrompt(['Keep it brief.'])).toMatchObject({ sentenceLimit: 2 });
  });

  it('reads a JSON block on its own lines inside prose', () => {
    const reading = readPrompt(['Options follow.\n[\n  {"name": "Trail Runner", "price": 89.5}\n]\nExplain.']);
    expect(reading.candidates).toEqual([{ name: 'Trail Runner', price: '89.50', tags: [], facts: {} }]);
    expect(reading.prose).toBe('Options follow.\nExplain.');
  });

  // A quadratic scan would take minutes on this input and fail by Jest's timeout; a linear one is instant.
  it('reads a prompt full of unmatched brackets and backticks as prose, not as JSON', () => {
    const hostile = `${'[ not json\n'.repeat(50_000)}${'```'.repeat(10_000)}`;
    expect(readPrompt([hostile]).candidates).toEqual([]);
  });

  it('reads items listed inline, with details in parentheses, split at commas or semicolons and a final "and"/"or"', () => {
    expect(readPrompt(['Products: Trail Runner 3 (running shoe, $99), Alpine Parka (jacket) and Camp Stove. Which one?'])).toMatchObject({
      candidates: [
        { name: 'Trail Runner 3', category: 'running shoe', price: '$99' },
        { name: 'Alpine Parka', category: 'jacket' },
        { name: 'Camp Stove' },
      ],
      prose: 'Which one?',
    });
    expect(readPrompt(['Options are: Salt and Pepper Grinder; Espresso Machine']).candidates.map((c) => c.name)).toEqual(['Salt and Pepper Grinder', 'Espresso Machine']);
    expect(readPrompt(['Recently viewed: Trail Socks, Rain Jacket']).seeds.map((c) => c.name)).toEqual(['Trail Socks', 'Rain Jacket']);
  });

  it('reads a markdown table, one item per row, columns named as in item lines', () => {
    const reading = readPrompt(['Our range:\n| Product | Type | Price | Notes |\n|:--|---|--:|---|\n| Trail Runner 3 | shoe | $99 | light |\n| Alpine Parka | jacket | $180 | |']);
    expect(reading.candidates).toEqual([
      { name: 'Trail Runner 3', category: 'shoe', price: '$99', tags: [], facts: { notes: 'light' } },
      { name: 'Alpine Parka', category: 'jacket', price: '$180', tags: [], facts: {} },
    ]);
  });

  it('reads a bullet "name: what it is" or "name — what it is"', () => {
    expect(readPrompt(['- Trail Runner 3: a light running shoe\n- Alpine Parka — an insulated jacket']).candidates).toEqual([
      { name: 'Trail Runner 3', description: 'a light running shoe', tags: [], facts: {} },
      { name: 'Alpine Parka', description: 'an insulated jacket', tags: [], facts: {} },
    ]);
  });

  it('takes prose with commas for prose, not for a list', () => {
    expect(readPrompt(['Store facts: we open at 9am, close at 6pm. Rules: keep it short, be friendly.']).candidates).toEqual([]);
  });

  it('does not take an instruction sentence in a bullet list for a product', () => {
    expect(readPrompt(['Rules:\n- Keep the explanation friendly and mention the price of each item.']).candidates).toEqual([]);
  });
});
