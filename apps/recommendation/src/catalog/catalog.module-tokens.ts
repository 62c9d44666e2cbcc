/** Injection token of the `CatalogStore` (PostgreSQL, shared by every instance). */
export const CATALOG_STORE = Symbol('CATALOG_STORE');
