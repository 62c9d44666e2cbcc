import { fileURLToPath } from 'node:url';
import { checkInfrastructure, formatProblem } from '../src/index.js';
import { rbac } from './rbac-knowledge.js';

const root = fileURLToPath(new URL('../..', import.meta.url));

describe('the repository infrastructure', () => {
  it('is consistent', () => {
    expect(checkInfrastructure({ root }, rbac).map(formatProblem)).toEqual([]);
  });
});
