import preset from '../../jest.preset.js';

// The suite starts the whole system once (local Azure + three services as processes): one worker,
// generous timeouts for start-up and indexing.
export default { ...preset, displayName: 'system-e2e', maxWorkers: 1, testTimeout: 60_000 };
