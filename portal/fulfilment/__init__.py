"""Literature fulfilment: the brochure library, personalised PDF packs, print batches."""
