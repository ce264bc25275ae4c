/**
 * Where the recipes and patches are: a flag wins, then the inventory's
 * images.recipes / images.patches, then the repository's own images/ and patches/.
 */
import { resolve } from 'node:path';
import type { Inventory } from '../inventory/types.ts';

export interface RecipeFolders {
  imagesDir: string;
  patchesDir: string;
}

export function recipeFolders(flags: { 'images-dir'?: unknown; 'patches-dir'?: unknown }, inventory: Inventory | null): RecipeFolders {
  const pick = (flag: unknown, fromInventory: string | undefined, fallback: string) => resolve(typeof flag === 'string' ? flag : (fromInventory ?? fallback));
  return {
    imagesDir: pick(flags['images-dir'], inventory?.images.recipes, 'images'),
    patchesDir: pick(flags['patches-dir'], inventory?.images.patches, 'patches'),
  };
}
