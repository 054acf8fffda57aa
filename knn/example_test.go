package knn_test

import (
	"fmt"

	"github.com/tsimcne/tsimcne-go/knn"
)

// Score a 2-D map: 700 points in three well separated groups, one per
// class, and one point of class 2 placed among class 0 (outvoted by its 15
// neighbours wherever it falls). The test split is
// a seventh of the points (the dataset is smaller than 70,000), stratified
// by class and drawn from the fixed seed, so every method is scored on the
// same points.
func ExampleScore() {
	const n = 700
	xy := make([]float32, 0, 2*n)
	labels := make([]int32, 0, n)
	for i := range n {
		c := int32(i % 3)
		xy = append(xy, float32(100*c)+float32(i%10), float32(i%7))
		labels = append(labels, c)
	}
	labels[699] = 2 // i = 699 lies in class 0's group
	acc, testSize, err := knn.Score(xy, 2, labels, knn.DefaultSplitSeed)
	if err != nil {
		panic(err)
	}
	fmt.Printf("test split %d points, accuracy %.2f\n", testSize, acc)
	// Output:
	// test split 100 points, accuracy 1.00
}
